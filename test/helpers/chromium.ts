// Debian's chromium, headless, driven over the Chrome DevTools Protocol on its
// WebSocket (Node's global WebSocket): no playwright or puppeteer. A fresh
// profile directory per browser; the process is ended by its pid in close().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

export class Chromium {
  readonly #child: ChildProcess;
  readonly #profile: string;
  readonly #port: number;
  output = '';

  private constructor(child: ChildProcess, profile: string, port: number) {
    this.#child = child;
    this.#profile = profile;
    this.#port = port;
  }

  static async launch(): Promise<Chromium> {
    const profile = await mkdtemp(join(tmpdir(), 'tug-chromium-'));
    const child = spawn('chromium', [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${profile}`,
      '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', '--window-size=1280,900', 'about:blank',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => { output += d; });
    child.stderr!.on('data', (d) => { output += d; });
    try {
      // With port 0, chromium writes the port it chose to DevToolsActivePort in the profile.
      const port = await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`chromium exited (${child.exitCode}): ${output.slice(-2000)}`);
        const text = await readFile(join(profile, 'DevToolsActivePort'), 'utf8').catch(() => '');
        return Number(text.split('\n')[0]) || null;
      }, { timeout: 20_000, interval: 50, what: 'chromium DevToolsActivePort' });
      const browser = new Chromium(child, profile, port);
      child.stdout!.on('data', (d) => { browser.output += d; });
      child.stderr!.on('data', (d) => { browser.output += d; });
      return browser;
    } catch (err) {
      child.kill('SIGKILL');
      await rm(profile, { recursive: true, force: true });
      throw err;
    }
  }

  /** A new tab, navigated to `url`. */
  async open(url: string): Promise<Page> {
    const res = await fetch(`http://127.0.0.1:${this.#port}/json/new?about:blank`, { method: 'PUT' });
    const target = (await res.json()) as { webSocketDebuggerUrl: string };
    const page = await Page.connect(target.webSocketDebuggerUrl);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    await page.send('Page.navigate', { url });
    return page;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    // Chromium's helper processes may still be writing to the profile as the browser exits: retry, and
    // never let a leftover directory fail the caller's clean-up (it would leave its other processes running).
    await rm(this.#profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }).catch(() => {});
  }
}

export class Page {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve: (value: any) => void; reject: (err: Error) => void }>();
  #nextId = 1;
  /** JavaScript dialogs (alert, confirm) the page opened: a script that ran. */
  readonly dialogs: string[] = [];
  /** Uncaught exceptions in the page. */
  readonly exceptions: string[] = [];

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: any };
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(message.error.message));
        else pending?.resolve(message.result);
      } else if (message.method === 'Page.javascriptDialogOpening') {
        this.dialogs.push(String(message.params?.message));
        void this.send('Page.handleJavaScriptDialog', { accept: true }).catch(() => {});
      } else if (message.method === 'Runtime.exceptionThrown') {
        this.exceptions.push(JSON.stringify(message.params?.exceptionDetails?.exception?.description ?? message.params?.exceptionDetails?.text));
      }
    });
  }

  static connect(url: string): Promise<Page> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.addEventListener('open', () => resolve(new Page(socket)), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
  }

  send<T = any>(method: string, params: object = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer from chromium within 15 s`));
      }, 15_000);
      this.#pending.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value as T); },
        reject: (err) => { clearTimeout(timer); reject(err); },
      });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates an expression in the page and returns its value (promises awaited). */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send<{ result: { value: T }; exceptionDetails?: { text: string } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (result.exceptionDetails) throw new Error(`in the page: ${result.exceptionDetails.text} (${expression})`);
    return result.result.value;
  }

  /** A PNG of the whole page (not only the viewport). */
  async screenshot(file: string): Promise<void> {
    const { cssContentSize } = await this.send<{ cssContentSize: { width: number; height: number } }>('Page.getLayoutMetrics');
    await this.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: Math.ceil(Math.min(cssContentSize.height, 4000)), deviceScaleFactor: 1, mobile: false });
    const { data } = await this.send<{ data: string }>('Page.captureScreenshot', { format: 'png' });
    await writeFile(file, Buffer.from(data, 'base64'));
  }

  close(): void {
    this.#socket.close();
  }
}
