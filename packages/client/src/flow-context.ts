// What every flow shares with the shim that owns it.
import type { UpstreamDialer } from './upstream-dialer.js';
import type { IsolationPolicy } from './isolation.js';
import type { Logger } from './logger.js';
import type { ShimStats } from './stats.js';
import type { QueueLimits } from './flow-state.js';
import type { AppAuthenticator, LocalCredentials } from './app-auth.js';
import type { CredentialSource } from './upstream-credentials.js';

export interface FlowContext {
  readonly dialer: UpstreamDialer;
  readonly isolation: IsolationPolicy;
  readonly logger: Logger;
  readonly stats: ShimStats;
  readonly queueLimits: QueueLimits;
  /** Bytes allowed in an upstream stream's send buffer before app datagrams are dropped. */
  readonly maxUpstreamBacklog: number;
  /** Log app addresses and server names (off by default: SafeLogging). */
  readonly detail: boolean;
  /** Local-credential mode: the shim authenticates the app and re-signs upstream. */
  readonly localAuth: LocalAuthConfig | undefined;
  /** Local mode: the app-facing check, one per shim (its nonces are good on any of its flows). */
  readonly appAuth: AppAuthenticator | undefined;
  /** A flow's turn to open its Tor stream (DialPacer.turn); true at once in local mode. */
  dialTurn(isClosed: () => boolean): true | Promise<boolean>;
  /** Coarse clock in ms, updated by the shim's timer (no Date.now() per packet). */
  now(): number;
  nextFlowId(): number;
  /** Called once when a flow has closed, to forget it. */
  forget(flow: FlowHandle): void;
}

export interface FlowHandle {
  readonly id: number;
  readonly kind: 'udp' | 'tcp';
  close(reason: string, level?: 'debug' | 'info' | 'warn'): void;
  idleExpired(now: number): boolean;
  /** Timer work: refresh the upstream credential before it expires, forget stale transactions. */
  maintain(now: number): void;
}

export interface LocalAuthConfig {
  readonly local: LocalCredentials;
  readonly source: CredentialSource;
  readonly nonceLifetimeMs?: number;
}
