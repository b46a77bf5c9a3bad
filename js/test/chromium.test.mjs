// The browser half: serves the repository on 127.0.0.1, opens
// js/test/browser/index.html in headless Chromium (playwright-core driving
// the system's chromium; no browser download) and reports each scenario the
// page ran as a test here.
//
// Chromium is found at $CHROMIUM_PATH or /usr/bin/chromium. Without it the
// test is skipped, unless MONTY_WIRE_REQUIRE_CHROMIUM=1 (scripts/test-web.sh
// sets it), which makes a missing browser a failure.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const required = process.env.MONTY_WIRE_REQUIRE_CHROMIUM === "1";
const available = existsSync(executablePath);

test("headless Chromium", { skip: !available && !required && `no browser at ${executablePath}` }, async (t) => {
  if (!available) {
    throw new Error(`no Chromium at ${executablePath} (set CHROMIUM_PATH, or apt-get install chromium)`);
  }
  const server = await serve();
  const profile = await mkdtemp(join(tmpdir(), "monty-wire-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const log = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // The page's scenarios about forgotten sessions force a collection.
    const cdp = await context.newCDPSession(page);
    await page.exposeFunction("__collectGarbage", () => cdp.send("HeapProfiler.collectGarbage"));
    page.on("console", (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`));
    page.on("requestfailed", (request) => log.push(`requestfailed: ${request.url()} ${request.failure()?.errorText}`));
    await page.goto(`${server.url}/js/test/browser/index.html`);
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
      await example.goto(`${server.url}/js/examples/browser.html`);
      const output = example.locator("#output");
      try {
        await output.filter({ hasText: "fresh worker: 42" }).waitFor({ timeout: 60_000 });
      } catch (error) {
        throw new Error(`${error.message}\noutput: ${await output.textContent()}\n--- browser log ---\n${log.join("\n")}`);
      }
      const text = await output.textContent();
      const expected = ["host: lookup_user(7)\n", "hello Ada\n", "complete: Ada has 3 letters\n", "stopped: monty-wire: the request did not finish within 1000 ms"];
      let at = 0;
      for (const part of expected) {
        const found = text.indexOf(part, at);
        if (found < 0) throw new Error(`missing ${JSON.stringify(part)} in order, in:\n${text}`);
        at = found + part.length;
      }
    });
  } catch (error) {
    error.message += `\n--- browser log ---\n${log.join("\n")}`;
    throw error;
  } finally {
    await context.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
  }
});
