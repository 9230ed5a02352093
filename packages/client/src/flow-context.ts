// What every flow adapter shares with the shim that owns it.
import type { DelayFeedbackSessionOptions, TimeBound } from '@onionturn/io';
import type { AppAuthenticator, LocalCredentials } from './app-auth.js';
import type { Clock } from './clock.js';
import type { QueueLimits } from './flow-state.js';
import type { FlowDriver } from './flow-driver.js';
import type { FlowTable } from './flow-table.js';
import type { ScrubbingLogger } from './logger.js';
import type { ShimStats } from './stats.js';
import type { UpstreamServer } from './endpoints.js';
import type { CredentialSource } from './upstream-credentials.js';

export interface FlowContext {
  readonly table: FlowTable<FlowDriver>;
  readonly clock: Clock;
  readonly logger: ScrubbingLogger;
  readonly stats: ShimStats;
  readonly queueLimits: QueueLimits;
  /** Bytes allowed in an upstream stream's send buffer before app datagrams are dropped. */
  readonly maxUpstreamBacklog: number;
  /** Drops what waited too long in an upstream stream's writer (--max-queue-delay-ms); undefined: bytes only. */
  readonly upstreamTimeBound: TimeBound | undefined;
  /**
   * The delay extension with the server (issue 14): offered at Allocate on UDP flows' streams
   * when set (needs the time bound); its sessions' options. undefined: off.
   */
  readonly delayFeedback: DelayFeedbackSessionOptions | undefined;
  /** Local-credential mode: the shim authenticates the app and re-signs upstream. */
  readonly localAuth: LocalAuthConfig | undefined;
  /** Local mode: the app-facing check, one per shim (its nonces are good on any of its flows). */
  readonly appAuth: AppAuthenticator | undefined;
  /** How logs name a server (its label only with detail: SafeLogging). */
  serverName(server: UpstreamServer): string;
}

export interface LocalAuthConfig {
  readonly local: LocalCredentials;
  readonly source: CredentialSource;
  readonly nonceLifetimeMs?: number;
}
