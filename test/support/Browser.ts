/**
 * A real headless browser for tests: the system's Chromium (Debian's `chromium` package, `/usr/bin/chromium`, or
 * `SPAWNKIT_CHROMIUM`) driven by playwright-core, which downloads no browser of its own. The browser is closed when
 * the test finishes, passed or failed. A missing executable fails the test with an install hint; it never skips.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { onTestFinished } from "vitest"

/** Where screenshots go: `test-results/screenshots/` at the repository's root (ignored by git). */
export const screenshotDir = NodePath.resolve(import.meta.dirname, "../../test-results/screenshots")

/** The Chromium executable: `SPAWNKIT_CHROMIUM` if set, else Debian's `/usr/bin/chromium`. */
export const chromiumPath = (): string => {
  const override = process.env["SPAWNKIT_CHROMIUM"]
  return override !== undefined && override !== "" ? override : "/usr/bin/chromium"
}

/** Launch headless Chromium for the current test; it is closed when the test finishes, whatever its outcome. */
export const launchBrowser = async (): Promise<Browser> => {
  const executablePath = chromiumPath()
  try {
    Fs.accessSync(executablePath, Fs.constants.X_OK)
  } catch (cause) {
    throw new Error(
      `no Chromium executable at ${executablePath}: install Debian's package (apt-get install -y chromium; .ci/run `
        + `does) or set SPAWNKIT_CHROMIUM to a Chromium binary`,
      { cause }
    )
  }
  // Chromium refuses to start its sandbox as root (CI containers run as root).
  const asRoot = process.getuid?.() === 0
  const browser = await chromium.launch({ executablePath, headless: true, args: asRoot ? ["--no-sandbox"] : [] })
  onTestFinished(async () => {
    await browser.close()
  })
  return browser
}

/** A page in a fresh browser context (its own cookies and storage), closed with the browser. */
export const newPage = async (browser: Browser): Promise<Page> => {
  const context = await browser.newContext()
  return context.newPage()
}

/** Save a full-page PNG as `test-results/screenshots/<name>.png` and return its path. */
export const screenshot = async (page: Page, name: string): Promise<string> => {
  Fs.mkdirSync(screenshotDir, { recursive: true })
  const path = NodePath.join(screenshotDir, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}
