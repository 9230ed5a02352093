// Listening the one way every server here needs: the bind error rejects, and every later 'error'
// (an accept that fails for want of descriptors, EMFILE) goes to the caller. A listening server
// without an 'error' listener takes the whole process down with it.
import type { ListenOptions, Server } from 'node:net';

export async function listenOn(server: Server, options: ListenOptions, onError: (err: Error) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', onError);
}
