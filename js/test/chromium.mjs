// Headless Chromium for the browser tests: playwright-core driving the
// system's chromium (no browser download), one profile per launch.
//
// Chromium is found at $CHROMIUM_PATH or /usr/bin/chromium. Without it the
// tests are skipped, unless MONTY_WIRE_REQUIRE_CHROMIUM=1 (scripts/test-web.sh
// sets it), which makes a missing browser a failure.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { serve } from "./server.mjs";

export const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const required = process.env.MONTY_WIRE_REQUIRE_CHROMIUM === "1";
const available = existsSync(executablePath);

/** The `skip` option of a test that needs Chromium. */
export const skip = !available && !required && `no browser at ${executablePath}`;

/** Launches Chromium in a fresh profile; resolves to `{ context, close }`. */
export async function launch() {
  if (!available) {
    throw new Error(`no Chromium at ${executablePath} (set CHROMIUM_PATH, or apt-get install chromium)`);
  }
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
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Serves the repository, launches Chromium and runs `body({ context, url, log })`:
 * `url` is the server's, `log` collects what pages report (and is appended to
 * an error `body` throws). Closes both afterwards.
 */
export async function withBrowser(body) {
  const server = await serve();
  const browser = await launch();
  const log = [];
  try {
    await body({ context: browser.context, url: server.url, log });
  } catch (error) {
    error.message += `\n--- browser log ---\n${log.join("\n")}`;
    throw error;
  } finally {
    await browser.close();
    await server.close();
  }
}
