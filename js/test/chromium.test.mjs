// The browser half: serves the repository on 127.0.0.1, opens
// js/test/browser/index.html in headless Chromium (see chromium.mjs) and
// reports each scenario the page ran as a test here.
import { test } from "node:test";
import { skip, withBrowser } from "./chromium.mjs";

test("headless Chromium", { skip }, (t) =>
  withBrowser(async ({ context, url, log }) => {
    const page = context.pages()[0] ?? (await context.newPage());
    // The page's scenarios about forgotten sessions force a collection.
    const cdp = await context.newCDPSession(page);
    await page.exposeFunction("__collectGarbage", () => cdp.send("HeapProfiler.collectGarbage"));
    page.on("console", (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`));
    page.on("requestfailed", (request) => log.push(`requestfailed: ${request.url()} ${request.failure()?.errorText}`));
    await page.goto(`${url}/js/test/browser/index.html`);
    await page.waitForFunction(() => window.__results !== undefined, null, { timeout: 300_000, polling: 250 });
    const results = await page.evaluate(() => window.__results);
    for (const result of results) {
      await t.test(`${result.name} (${result.ms} ms)`, () => {
        if (!result.ok) {
          throw new Error(`${result.error}\n--- browser log ---\n${log.join("\n")}`);
        }
      });
    }
    await t.test("js/examples/browser.html (the README's browser quick start)", async () => {
      const example = await context.newPage();
      example.on("console", (message) => log.push(`example console.${message.type()}: ${message.text()}`));
      example.on("pageerror", (error) => log.push(`example pageerror: ${error.message}`));
      await example.goto(`${url}/js/examples/browser.html`);
      const output = example.locator("#output");
      try {
        await output.filter({ hasText: "fresh worker: 42" }).waitFor({ timeout: 60_000 });
      } catch (error) {
        throw new Error(`${error.message}\noutput: ${await output.textContent()}\n--- browser log ---\n${log.join("\n")}`);
      }
      const text = await output.textContent();
      const expected = ["host: lookup_user(7)\n", "hello Ada\n", "complete: Ada has 3 letters\n", "stopped: monty-wire: the request ran past its timeout of 1000 ms"];
      let at = 0;
      for (const part of expected) {
        const found = text.indexOf(part, at);
        if (found < 0) throw new Error(`missing ${JSON.stringify(part)} in order, in:\n${text}`);
        at = found + part.length;
      }
    });
  }),
);
