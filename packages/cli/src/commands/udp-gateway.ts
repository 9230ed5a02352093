// `onionturn udp-gateway`: the service end of a datagram onion service (issue 15). It sits behind
// a HiddenServicePort on the service's host and hands the datagrams of each stream to one UDP
// target, nowhere else (no open relay).
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { errorText, formatHostPort, isLoopbackAddress, parseHostPort } from '@onionturn/io';
import type { CommandModule } from 'yargs';
import type { HostPort, Parsed } from '@onionturn/client';
import { DEFAULT_UDP_GATEWAY_LIMITS, UdpGateway, createGatewayMetricsRegistry, createLogger, serveMetrics, type UdpGatewayLimits } from '@onionturn/server';
import { UsageError } from '../exit-codes.js';
import { watchStopSignals } from '../stop-signals.js';
import { wholeNumber } from '../config.js';

/** `tcp://IP:PORT`; beyond loopback only with allowPublic (tor reaches it on 127.0.0.1). */
export function parseGatewayListen(text: string, allowPublic: boolean): Parsed<HostPort> {
  const m = /^tcp:\/\/(.+)$/.exec(text);
  if (!m) return { ok: false, reason: `--listen '${text}' must be tcp://IP:PORT, e.g. tcp://127.0.0.1:5300` };
  const hp = parseHostPort(m[1] as string, true);
  if (!hp.ok) return { ok: false, reason: `--listen: ${hp.reason}` };
  if (isIP(hp.value.host) === 0) return { ok: false, reason: `--listen: '${hp.value.host}' must be an IP address (names are not resolved)` };
  if (!allowPublic && !isLoopbackAddress(hp.value.host)) {
    return {
      ok: false,
      reason: `--listen ${text} is not a loopback address: tor's HiddenServicePort reaches the gateway on 127.0.0.1; pass --allow-public-listen to listen there anyway`,
    };
  }
  return hp;
}

/** `udp://IP:PORT`: an address, so what the gateway reaches is decided here, not by a resolver. */
export function parseGatewayTarget(text: string): Parsed<HostPort> {
  const m = /^udp:\/\/(.+)$/.exec(text);
  if (!m) return { ok: false, reason: `--to '${text}' must be udp://IP:PORT, e.g. udp://127.0.0.1:53` };
  const hp = parseHostPort(m[1] as string);
  if (!hp.ok) return { ok: false, reason: `--to: ${hp.reason}` };
  if (isIP(hp.value.host) === 0) return { ok: false, reason: `--to: '${hp.value.host}' must be an IP address, e.g. udp://127.0.0.1:${hp.value.port}` };
  return hp;
}

interface GatewayArgs {
  listen?: string;
  to?: string;
  allowPublicListen: boolean;
  maxStreams: number;
  maxQueuedBytes: number;
  idleTimeout: number;
  maxDatagram: number;
  metrics?: string;
  logLevel: string;
}

export function udpGatewayCommand(): CommandModule {
  const d = DEFAULT_UDP_GATEWAY_LIMITS;
  return {
    command: 'udp-gateway',
    describe: 'serve a datagram onion service: streams of framed datagrams (from `onionturn client`) to one UDP target',
    builder: (y) =>
      y
        .option('listen', { type: 'string', requiresArg: true, describe: 'tcp://IP:PORT the HiddenServicePort points at (loopback)' })
        .option('to', { type: 'string', requiresArg: true, describe: 'udp://IP:PORT: the one UDP service every datagram goes to' })
        .option('allow-public-listen', { type: 'boolean', default: false, describe: 'allow a non-loopback --listen address' })
        .option('max-streams', { type: 'number', default: d.maxStreams, requiresArg: true, describe: 'streams at once; more are closed on arrival' })
        .option('max-queued-bytes', {
          type: 'number',
          default: d.maxQueuedBytes,
          requiresArg: true,
          describe: 'bytes queued per stream and direction; datagrams beyond are dropped',
        })
        .option('idle-timeout', {
          type: 'number',
          default: d.idleTimeoutMs / 1000,
          requiresArg: true,
          describe: 'seconds without a datagram after which a stream is closed',
        })
        .option('max-datagram', {
          type: 'number',
          default: d.maxDatagram,
          requiresArg: true,
          describe: 'largest datagram passed to the target; longer ones are dropped',
        })
        .option('metrics', { type: 'string', requiresArg: true, describe: 'serve Prometheus metrics on IP:PORT/metrics (loopback)' })
        .option('log-level', { choices: ['error', 'warn', 'info', 'debug'], default: 'info', describe: 'JSON log level (logs go to stderr)' })
        .example('$0 udp-gateway --listen tcp://127.0.0.1:5300 --to udp://127.0.0.1:53', 'torrc: HiddenServicePort 53 127.0.0.1:5300'),
    handler: async (argv) => {
      const args = argv as unknown as GatewayArgs;
      if (args.listen === undefined) throw new UsageError('--listen tcp://IP:PORT is required (where the HiddenServicePort points)');
      if (args.to === undefined) throw new UsageError('--to udp://IP:PORT is required (the UDP service)');
      const listen = parseGatewayListen(args.listen, args.allowPublicListen);
      if (!listen.ok) throw new UsageError(listen.reason);
      const target = parseGatewayTarget(args.to);
      if (!target.ok) throw new UsageError(target.reason);
      const limits: UdpGatewayLimits = {
        maxStreams: wholeNumber('max-streams', args.maxStreams, { min: 1, max: 100_000 }),
        maxQueuedBytes: wholeNumber('max-queued-bytes', args.maxQueuedBytes, { min: 1024, max: 64 * 1024 * 1024 }),
        idleTimeoutMs: wholeNumber('idle-timeout', args.idleTimeout, { min: 1, max: 86_400 }) * 1000,
        maxDatagram: wholeNumber('max-datagram', args.maxDatagram, { min: 1, max: 65_535 }),
      };
      let metrics: HostPort | undefined;
      if (args.metrics !== undefined) {
        const m = parseHostPort(args.metrics);
        if (!m.ok || isIP(m.value.host) === 0) throw new UsageError(`--metrics '${args.metrics}' must be IP:PORT, e.g. 127.0.0.1:9465`);
        if (!isLoopbackAddress(m.value.host) && !args.allowPublicListen)
          throw new UsageError(`--metrics ${args.metrics} is not a loopback address; pass --allow-public-listen to serve metrics there`);
        metrics = m.value;
      }
      const logger = createLogger({ level: args.logLevel });
      const stops = watchStopSignals(() => undefined);
      const gateway = new UdpGateway({
        listenHost: listen.value.host,
        listenPort: listen.value.port,
        targetHost: target.value.host,
        targetPort: target.value.port,
        limits,
        logger,
      });
      let metricsServer: Server | undefined;
      try {
        const address = await gateway.listen();
        if (metrics) {
          metricsServer = await serveMetrics(createGatewayMetricsRegistry(gateway), metrics.host, metrics.port, (e) =>
            logger.error('metrics listener error', { error: errorText(e) }),
          ).catch(async (e: unknown) => {
            await gateway.close();
            throw new Error(`cannot serve metrics on ${args.metrics ?? ''}: ${errorText(e)}`);
          });
        }
        logger.info('udp-gateway listening', {
          listen: `tcp://${formatHostPort(address.address, address.port)}`,
          maxStreams: limits.maxStreams,
          idleTimeoutS: limits.idleTimeoutMs / 1000,
        });
        await new Promise<void>((resolve) => stops.signal.addEventListener('abort', () => resolve(), { once: true }));
        await gateway.close();
        logger.info('udp-gateway stopped', { signal: String(stops.signal.reason), ...gateway.stats });
      } finally {
        stops.dispose();
        metricsServer?.close();
      }
    },
  };
}
