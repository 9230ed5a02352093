// A minimal Tor control-port client (control-spec.txt): enough for tests to read bootstrap
// state, streams and circuits, and to follow STREAM/CIRC events. The test network runs with
// CookieAuthentication 0 and no password, so AUTHENTICATE "" is all the auth there is.
import { connect, type Socket } from 'node:net';

export interface ControlReply {
  /** Three-digit status code of the final line (250 = OK). */
  readonly code: number;
  /** Reply lines without code and separator; data blocks ("+" lines) are joined with "\n". */
  readonly lines: readonly string[];
}

export interface StreamStatus {
  readonly id: string;
  readonly status: string;
  readonly circuitId: string;
  readonly target: string;
}

export interface CircuitStatus {
  readonly id: string;
  readonly status: string;
  /** Hops as tor prints them: "$FINGERPRINT~nickname". */
  readonly path: readonly string[];
  readonly purpose: string | undefined;
  /** SOCKS username the circuit is isolated by, when any. */
  readonly socksUsername: string | undefined;
  /** Every KEY=VALUE item on the line (quotes removed). */
  readonly fields: Readonly<Record<string, string>>;
}

export class TorControlError extends Error {
  readonly code: number;
  constructor(command: string, reply: ControlReply) {
    super(`tor control '${command.split(' ')[0] ?? command}' failed: ${reply.code} ${reply.lines.join(' / ')}`);
    this.name = 'TorControlError';
    this.code = reply.code;
  }
}

interface Pending {
  readonly command: string;
  resolve(reply: ControlReply): void;
  reject(err: Error): void;
}

export class TorControl {
  readonly #socket: Socket;
  readonly #pending: Pending[] = [];
  readonly #eventListeners = new Set<(event: ControlReply) => void>();
  #buffer = '';
  #lines: string[] = [];
  #data: string[] | undefined;
  #closedError: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    const closed = (err?: Error): void => {
      this.#closedError ??= new Error(`tor control connection closed${err ? `: ${err.message}` : ''}`);
      for (const p of this.#pending.splice(0)) p.reject(this.#closedError);
    };
    socket.on('error', closed);
    socket.on('close', () => closed());
  }

  /** Connects to 127.0.0.1:port and authenticates with an empty password. */
  static async connect(port: number, host = '127.0.0.1'): Promise<TorControl> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
    });
    const control = new TorControl(socket);
    try {
      await control.command('AUTHENTICATE ""');
    } catch (err) {
      control.close();
      throw err;
    }
    return control;
  }

  /** Sends one command line; resolves with a 2xx reply, rejects with TorControlError otherwise. */
  command(line: string): Promise<ControlReply> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    if (/[\r\n]/.test(line)) return Promise.reject(new Error('control command must be a single line'));
    return new Promise((resolve, reject) => {
      this.#pending.push({
        command: line,
        resolve: (reply) => (reply.code >= 200 && reply.code < 300 ? resolve(reply) : reject(new TorControlError(line, reply))),
        reject,
      });
      this.#socket.write(`${line}\r\n`);
    });
  }

  /** GETINFO for one key; multi-line values come back joined with "\n". */
  async getInfo(key: string): Promise<string> {
    const reply = await this.command(`GETINFO ${key}`);
    const prefix = `${key}=`;
    const line = reply.lines.find((l) => l.startsWith(prefix));
    if (line === undefined) throw new Error(`GETINFO ${key}: no value in reply ${JSON.stringify(reply.lines)}`);
    return line.slice(prefix.length).replace(/^\n/, '');
  }

  async streams(): Promise<StreamStatus[]> {
    return parseStreamStatus(await this.getInfo('stream-status'));
  }

  async circuits(): Promise<CircuitStatus[]> {
    return parseCircuitStatus(await this.getInfo('circuit-status'));
  }

  /** Bootstrap progress in percent (from status/bootstrap-phase). */
  async bootstrapProgress(): Promise<number> {
    const phase = await this.getInfo('status/bootstrap-phase');
    return Number(/PROGRESS=(\d+)/.exec(phase)?.[1] ?? 0);
  }

  /** SETEVENTS for the given types (e.g. STREAM, CIRC); listener gets each async event. */
  async onEvents(types: readonly string[], listener: (event: ControlReply) => void): Promise<() => void> {
    this.#eventListeners.add(listener);
    await this.command(`SETEVENTS ${types.join(' ')}`);
    return () => this.#eventListeners.delete(listener);
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    if (this.#data) {
      // Inside a "+" data block: a lone "." ends it; a leading ".." is an escaped ".".
      if (line === '.') {
        const block = this.#data.join('\n');
        this.#data = undefined;
        const last = this.#lines.length - 1;
        this.#lines[last] = `${this.#lines[last] ?? ''}\n${block}`;
      } else {
        this.#data.push(line.startsWith('..') ? line.slice(1) : line);
      }
      return;
    }
    const code = Number(line.slice(0, 3));
    const sep = line[3];
    this.#lines.push(line.slice(4));
    if (sep === '+') this.#data = [];
    if (sep !== ' ') return;
    const reply: ControlReply = { code, lines: this.#lines };
    this.#lines = [];
    if (code >= 600 && code < 700) {
      for (const l of this.#eventListeners) l(reply);
      return;
    }
    this.#pending.shift()?.resolve(reply);
  }
}

/** Parses GETINFO stream-status: "StreamID SP StreamStatus SP CircuitID SP Target" per line. */
export function parseStreamStatus(text: string): StreamStatus[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [id = '', status = '', circuitId = '', target = ''] = l.trim().split(' ');
      return { id, status, circuitId, target };
    });
}

/** Parses GETINFO circuit-status: "CircID SP CircStatus [SP Path] *(SP Key=Value)" per line. */
export function parseCircuitStatus(text: string): CircuitStatus[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const tokens = tokenize(l.trim());
      const [id = '', status = ''] = tokens;
      let rest = tokens.slice(2);
      let path: string[] = [];
      if (rest[0] !== undefined && !rest[0].includes('=')) {
        path = rest[0].split(',');
        rest = rest.slice(1);
      }
      const fields: Record<string, string> = {};
      for (const t of rest) {
        const eq = t.indexOf('=');
        if (eq > 0) fields[t.slice(0, eq)] = unquote(t.slice(eq + 1));
      }
      return { id, status, path, purpose: fields['PURPOSE'], socksUsername: fields['SOCKS_USERNAME'], fields };
    });
}

/** Splits on spaces outside double quotes (SOCKS_USERNAME="a b" stays one token). */
function tokenize(line: string): string[] {
  return line.match(/(?:[^\s"]+|"(?:\\.|[^"\\])*")+/g) ?? [];
}

function unquote(value: string): string {
  if (!value.startsWith('"') || !value.endsWith('"') || value.length < 2) return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}
