// A line plot as a PNG, with nothing but node:zlib: a white canvas, grey grid lines (one per
// tenth of each axis), and one coloured polyline per series. No text: the numbers go in the
// table beside it.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * series: [{ color: [r, g, b], points: [{ x, y }] }]; the y axis starts at 0.
 * Returns the PNG bytes.
 */
export function plotPng(series, width = 800, height = 400) {
  const px = Buffer.alloc(width * height * 3, 255);
  const set = (x, y, [r, g, b]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (y * width + x) * 3;
    px[i] = r;
    px[i + 1] = g;
    px[i + 2] = b;
  };
  const all = series.flatMap((s) => s.points);
  const xMin = Math.min(...all.map((p) => p.x));
  const xMax = Math.max(...all.map((p) => p.x), xMin + 1e-9);
  const yMax = Math.max(...all.map((p) => p.y), 1e-9) * 1.1;
  const m = 20;
  const sx = (x) => Math.round(m + ((x - xMin) / (xMax - xMin)) * (width - 2 * m));
  const sy = (y) => Math.round(height - m - (y / yMax) * (height - 2 * m));
  for (let i = 0; i <= 10; i++) {
    const gx = Math.round(m + (i / 10) * (width - 2 * m));
    const gy = Math.round(m + (i / 10) * (height - 2 * m));
    for (let y = m; y <= height - m; y++) set(gx, y, i === 0 ? [0, 0, 0] : [220, 220, 220]);
    for (let x = m; x <= width - m; x++) set(x, gy, i === 10 ? [0, 0, 0] : [220, 220, 220]);
  }
  for (const s of series) {
    for (let i = 1; i < s.points.length; i++) {
      const [a, b] = [s.points[i - 1], s.points[i]];
      const x0 = sx(a.x),
        y0 = sy(a.y),
        x1 = sx(b.x),
        y1 = sy(b.y);
      const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
      for (let k = 0; k <= steps; k++) {
        const x = Math.round(x0 + ((x1 - x0) * k) / steps);
        const y = Math.round(y0 + ((y1 - y0) * k) / steps);
        for (let d = -1; d <= 1; d++) set(x, y + d, s.color);
      }
    }
  }
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) px.copy(raw, y * (1 + width * 3) + 1, y * width * 3, (y + 1) * width * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
