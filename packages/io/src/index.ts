// @onionturn/io: Node socket helpers that the server, the client shim and the CLI share (the relay
// hot path's TCP writer among them). @onionturn/protocol and @onionturn/credentials stay pure;
// Node I/O lives here.
export { BURST_GAP_MS, COALESCE_FILL, TcpBatchWriter, WRITE_CHUNK, type MessageClass, type TimeBound, type WriteGate } from './tcp-batch-writer.js';
export { canConnect } from './can-connect.js';
export { formatHostPort, isLoopbackAddress, parseHostPort, type HostPort, type Parsed } from './host-port.js';
export { errorCode, errorText } from './errors.js';
export { listenOn } from './listen.js';
export { SENSITIVE_KEYS, scrub } from './scrub.js';
export { SourceBuckets, TokenBucket } from './token-bucket.js';
export { DEFAULT_MAX_QUEUE_DELAY_MS, FINISH_MS, INTERVAL_MS, QueueDrops, TimedQueue, type TimedQueueOptions } from './timed-queue.js';
export {
  ACTIVE_MS,
  ARRIVAL_STANDING_MS,
  COALESCE_MS,
  DelayFeedbackCounters,
  DelayFeedbackSession,
  LATE_HOLD_MS,
  LATE_MIN_MS,
  LONE_ACK_BYTES,
  LONE_ACK_DELAY_MS,
  LONE_REPORT_FULL_MS,
  LONE_REPORT_MS,
  REPORT_INTERVAL_MS,
  REPORT_TIMEOUT_MS,
  STALL_MOVE_MS,
  REVERSE_QUEUED_HOLD_MS,
  type DelayFeedbackSessionOptions,
  type DelayReport,
} from './delay-feedback-session.js';
export {
  APP_LIMITED_GAIN,
  BURST_CELLS,
  INITIAL_CELLS,
  InflightCap,
  MIN_CELLS,
  MIN_RATE_CELLS,
  REFUSING_CREDIT_MS,
  TOR_CELL_PAYLOAD,
  VITAL_CAPS,
  type InflightCapOptions,
} from './inflight-cap.js';
