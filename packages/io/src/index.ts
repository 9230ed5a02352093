// @onionturn/io: Node socket helpers that the server and the client shim share on their relay
// hot paths. @onionturn/protocol and @onionturn/credentials stay pure; Node I/O lives here.
export { BURST_GAP_MS, TcpBatchWriter } from './tcp-batch-writer.js';
