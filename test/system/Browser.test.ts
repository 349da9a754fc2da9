/**
 * The browser tests' set-up works here: the system's headless Chromium, driven by playwright-core, loads a page from a
 * loopback HTTP server, runs its JavaScript on a click, and saves a non-empty PNG screenshot.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type * as Net from "node:net"
import { onTestFinished } from "vitest"
import { launchBrowser, newPage, screenshot } from "../support/Browser.js"

const page = `<!doctype html>
<html>
  <head><meta charset="utf-8"><title>browser self-test</title></head>
  <body>
    <p id="status">waiting</p>
    <button id="go">Click me</button>
    <script>
      document.getElementById("go").addEventListener("click", () => {
        document.getElementById("status").textContent = "clicked"
      })
    </script>
  </body>
</html>
`

/** A plain HTTP server on 127.0.0.1 and a free port serving `page`, closed when the test finishes. */
const servePage = async (): Promise<string> => {
  const server = Http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" })
    response.end(page)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  onTestFinished(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}/`
}

describe("headless Chromium", () => {
  it("loads a loopback page, runs its JavaScript on a click, and saves a screenshot", async () => {
    const url = await servePage()
    const browser = await launchBrowser()
    const tab = await newPage(browser)
    await tab.goto(url)
    expect(await tab.title()).toBe("browser self-test")
    expect(await tab.locator("#status").textContent()).toBe("waiting")

    await tab.getByRole("button", { name: "Click me" }).click()
    // Waits for the condition (playwright's auto-waiting locator), not for a time.
    await tab.locator("#status", { hasText: "clicked" }).waitFor()
    expect(await tab.locator("#status").textContent()).toBe("clicked")

    const path = await screenshot(tab, "browser-self-test")
    expect(path.endsWith("test-results/screenshots/browser-self-test.png")).toBe(true)
    const png = Fs.readFileSync(path)
    expect(png.length).toBeGreaterThan(0)
    // The PNG signature: a real image, not an empty or error file.
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  })
})
