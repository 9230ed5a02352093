// A real WebRTC call in Debian Chromium driven by playwright-core: two relay-only peers in one
// page, data-channel echo (and optionally fake audio/video). Everything started is stopped.
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { NetNamespace } from './netns.js';
import { TOOLS, requireTool } from './tools.js';
import { PAGE_HTML, type BenchCallConfig, type BenchCallResult, type CallConfig, type CallResult } from './webrtc-page.js';

export type { BenchCallConfig, BenchCallResult, CallConfig, CallResult, CandidatePairInfo } from './webrtc-page.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // Received audio must play (be pulled through the jitter buffer) for its concealment stats.
  '--autoplay-policy=no-user-gesture-required',
  // Without it a loopback-only setup gathers no candidates at all, not even relay ones.
  '--allow-loopback-in-peer-connection',
];

/** Serves the call page on 127.0.0.1 and launches Chromium; close() stops both. */
export class CallBrowser {
  private constructor(
    private readonly server: Server,
    private readonly browser: Browser,
    readonly url: string,
    private readonly routed: boolean,
  ) {}

  /**
   * With `netns`, Chromium runs inside that network namespace; the page is then served to it by
   * playwright (page routing) from this process, as the namespace cannot reach this 127.0.0.1.
   * `extraArgs`: more Chromium switches (e.g. a WebRTC IP handling policy, as Electron sets it).
   * `ownSignals`: the caller handles SIGINT/SIGTERM itself (and closes the browser): playwright's
   * handlers would kill the browser and exit the process before the caller stopped what else it
   * started (coturn, tor, namespaces).
   */
  static async start(
    options: { readonly netns?: NetNamespace; readonly extraArgs?: readonly string[]; readonly ownSignals?: boolean } = {},
  ): Promise<CallBrowser> {
    const chromiumPath = requireTool(TOOLS.chromium);
    const executablePath = options.netns ? options.netns.wrapperScript(chromiumPath) : chromiumPath;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE_HTML);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    let browser: Browser;
    try {
      const own = options.ownSignals === true;
      browser = await chromium.launch({
        executablePath,
        headless: true,
        handleSIGINT: !own,
        handleSIGTERM: !own,
        args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
      });
    } catch (err) {
      server.close();
      throw err;
    }
    return new CallBrowser(server, browser, url, options.netns !== undefined);
  }

  /** A fresh page at `url` (the status page, say); the caller closes it. */
  async open(url: string): Promise<Page> {
    const page = await this.browser.newPage();
    await page.goto(url);
    return page;
  }

  /** One call with a fresh page. */
  async call(config: Partial<CallConfig> & Pick<CallConfig, 'iceServers'>): Promise<CallResult> {
    const full: CallConfig = { media: false, messages: 10, timeoutMs: 20000, ...config };
    const page = await this.browser.newPage();
    try {
      if (this.routed) {
        await page.route(this.url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE_HTML }));
      }
      await page.goto(this.url);
      return (await page.evaluate(`window.runCall(${JSON.stringify(full)})`)) as CallResult;
    } finally {
      await page.close();
    }
  }

  /**
   * One benchmark call (media for config.seconds) with a fresh page; see runBenchCall in
   * webrtc-page.ts. With config.cutAtSeconds the page calls `onCut` then (its result: streams cut).
   */
  async benchCall(config: BenchCallConfig, onCut?: () => Promise<number>): Promise<BenchCallResult> {
    const page = await this.browser.newPage();
    try {
      if (config.cutAtSeconds !== undefined) {
        if (!onCut) throw new Error('benchCall: cutAtSeconds needs onCut');
        await page.exposeFunction('benchCut', onCut);
      }
      if (this.routed) {
        await page.route(this.url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE_HTML }));
      }
      await page.goto(this.url);
      return (await page.evaluate(`window.runBenchCall(${JSON.stringify(config)})`)) as BenchCallResult;
    } finally {
      await page.close();
    }
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
