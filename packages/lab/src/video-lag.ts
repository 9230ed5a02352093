// bench:call's video lag (BenchCallResult.videoLagMs), from what the receiving page saw of each
// shown video frame. Pure: the page only gathers (display time, RTP timestamp) pairs.

/** The RTP video clock (Hz): every WebRTC video codec uses 90 kHz. */
const RTP_VIDEO_HZ = 90_000;
const TS_SPAN = 2 ** 32;

/**
 * Per shown frame, how much later than the least delayed one it was shown (ms). `frames` holds
 * pairs in the order shown: display time (ms, the page's clock) and the frame's 32-bit RTP
 * timestamp. Display time less capture time (the RTP timestamp counts from the sender's capture
 * clock) is each frame's delay plus one constant, which taking the least away removes; the
 * timestamp is unwrapped where it passes 2^32.
 */
export function videoLagMs(frames: readonly number[]): number[] {
  const lag: number[] = [];
  let wraps = 0;
  for (let i = 0; i + 1 < frames.length; i += 2) {
    const ts = frames[i + 1] as number;
    if (i > 0 && ts < (frames[i - 1] as number) - TS_SPAN / 2) wraps++;
    lag.push((frames[i] as number) - ((ts + wraps * TS_SPAN) * 1000) / RTP_VIDEO_HZ);
  }
  let least = Infinity;
  for (const x of lag) least = Math.min(least, x);
  return lag.map((x) => x - least);
}
