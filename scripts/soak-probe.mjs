// Preloaded into the server by `npm run soak` (node --import): reports the process's own heap
// over the IPC channel the soak opened, without keeping the process alive.
if (process.send) {
  process.channel?.unref();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    process.send?.({ soakProbe: true, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss });
  }, 2000);
  timer.unref();
}
