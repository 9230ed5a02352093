// Every fuzz target, by name.
import type { Target } from '../target.js';
import { cliParsers, serverFlags } from './cli-flags.js';
import { datagramFraming } from './datagram.js';
import { credentialRequest, peerPolicy, proxyHeader, socks5Codec } from './parsers.js';
import { channelData, streamFramer, stunDecoder } from './protocol.js';
import { serverCore } from './server-core.js';
import { shimFlow } from './shim-flow.js';
import { socksFront } from './socks-front.js';

export const TARGETS: readonly Target[] = [
  stunDecoder,
  streamFramer,
  channelData,
  serverCore,
  peerPolicy,
  proxyHeader,
  credentialRequest,
  socks5Codec,
  datagramFraming,
  socksFront,
  shimFlow,
  serverFlags,
  cliParsers,
];
