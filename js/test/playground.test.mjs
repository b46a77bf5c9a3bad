// The playground (js/examples/playground.html) in headless Chromium: types
// code, runs it, checks output, result, traceback, type-check diagnostics and
// the time limit, stops `while True: pass` with the Stop button, runs again,
// and saves a screenshot to js/test/output/playground.png.
import { mkdir } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { skip, withBrowser } from "./chromium.mjs";
import { check } from "./scenarios.mjs";

const screenshot = fileURLToPath(new URL("./output/playground.png", import.meta.url));

// What the type-check pane shows: diagnostics from a module built with
// --type-check, or this note from the default module (which answers typeCheck
// with invalidArgument).
const NO_CHECKER = "not available: this module was built without the type checker";

test("the playground in headless Chromium", { skip }, (t) =>
  withBrowser(async ({ context, url, log }) => {
    const page = await context.newPage();
    page.on("console", (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`));
    await page.goto(`${url}/js/examples/playground.html`);
    await page.waitForFunction(() => document.body.dataset.state === "idle", null, { timeout: 120_000 });
    const text = (id) => page.locator(`#${id}`).textContent();
    let runs = 0;
    /** Types `code`, clicks Run, waits for the run to end; resolves to the page state. */
    async function run(code, { limit = "5" } = {}) {
      await page.locator("#code").fill(code);
      await page.locator("#time-limit").fill(limit);
      await page.locator("#run").click();
      runs += 1;
      await page.waitForFunction((n) => document.body.dataset.runs === String(n), runs, { timeout: 60_000 });
      return page.evaluate(() => document.body.dataset.state);
    }

    await t.test("output, stderr and the result", async () => {
      const state = await run("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n[n * n for n in range(4)]");
      check(state === "done", `state ${state}`);
      check((await text("output")) === "to stdout\nto stderr\n", `output: ${await text("output")}`);
      // Each print fragment is a span of its own.
      const stderr = (await page.locator("#output .stderr").allTextContents()).join("");
      check(stderr === "to stderr\n", `stderr is marked: ${JSON.stringify(stderr)}`);
      check((await text("result")) === "[0, 1, 4, 9]", `result: ${await text("result")}`);
      check((await text("traceback")) === "", "no traceback");
    });

    await t.test("a formatted traceback and type-check diagnostics", async () => {
      const state = await run("count: int = 'three'\n\ndef ratio(n):\n    return n / 0\n\nratio(1)\n");
      check(state === "done", `state ${state}`);
      const traceback = await text("traceback");
      for (const part of [
        "Traceback (most recent call last):\n",
        '  File "main.py", line 6, in <module>\n    ratio(1)\n    ^^^^^^^^\n',
        '  File "main.py", line 4, in ratio\n    return n / 0\n           ^^^^^\n',
        "ZeroDivisionError: division by zero",
      ]) {
        check(traceback.includes(part), `traceback has ${JSON.stringify(part)}:\n${traceback}`);
      }
      check((await text("result")) === "", "no result");
      const diagnostics = await text("diagnostics");
      check(diagnostics.startsWith(NO_CHECKER) || diagnostics.includes("invalid-assignment"), `diagnostics: ${diagnostics}`);
    });

    await t.test("the time limit raises TimeoutError", async () => {
      const state = await run("while True:\n    pass", { limit: "0.2" });
      check(state === "done", `state ${state}`);
      check((await text("traceback")).includes("TimeoutError"), `traceback: ${await text("traceback")}`);
    });

    await t.test("Stop kills while True: pass, and the next run works", async () => {
      await page.locator("#code").fill("while True:\n    pass");
      await page.locator("#time-limit").fill("600");
      await page.locator("#run").click();
      runs += 1;
      await page.waitForFunction(() => document.body.dataset.state === "running");
      // Into the loop: the worker is busy, so nothing else can answer.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await page.locator("#stop").click();
      await page.waitForFunction((n) => document.body.dataset.runs === String(n), runs, { timeout: 10_000 });
      check((await page.evaluate(() => document.body.dataset.state)) === "stopped", "state stopped");
      check((await text("traceback")).startsWith("stopped"), `traceback: ${await text("traceback")}`);
      const state = await run(
        "def greet(name: str) -> str:\n    return f'hello {name}'\n\nfor who in ['Ada', 'Grace']:\n    print(greet(who))\n\n{n: n * n for n in range(5)}\n",
      );
      check(state === "done", `state ${state}`);
      check((await text("output")) === "hello Ada\nhello Grace\n", `output: ${await text("output")}`);
      check((await text("result")) === "{0: 0, 1: 1, 2: 4, 3: 9, 4: 16}", `result: ${await text("result")}`);
      const diagnostics = await text("diagnostics");
      check(diagnostics.startsWith(NO_CHECKER) || diagnostics === "no type errors", `diagnostics: ${diagnostics}`);
      await mkdir(new URL("./output/", import.meta.url), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      t.diagnostic(`screenshot: ${screenshot}`);
      t.diagnostic(`start-up (ms since navigation): ${await page.evaluate(() => document.body.dataset.timings)}`);
    });
  }),
);
