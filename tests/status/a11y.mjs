// Renders status pages in headless Chromium (Debian's, driven by puppeteer-core: no browser
// is downloaded), keeps a full-page screenshot of each, and runs axe-core with the rules of
// WCAG 2.0/2.1 A and AA on it, at a desktop and a phone width. Exits 1 on any violation.
//
//   node a11y.mjs <chromium> <out-dir> <state> <url>...
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.env.A11Y_TOOLS, "package.json"));
const puppeteer = require("puppeteer-core");
const axeSource = require("fs").readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const [chromium, outDir, state, ...urls] = process.argv.slice(2);
const widths = [
  { name: "desktop", width: 1280, height: 900, mobile: false },
  { name: "phone", width: 375, height: 740, mobile: true },
];

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let failed = 0;
const report = [];
try {
  for (const url of urls) {
    for (const w of widths) {
      const page = await browser.newPage();
      await page.setViewport({ width: w.width, height: w.height, isMobile: w.mobile, hasTouch: w.mobile });
      const blocked = [];
      page.on("console", (m) => { if (m.type() === "error") blocked.push(m.text()); });
      const slug = new URL(url).pathname.replace(/[^a-z0-9]+/gi, "_").replace(/^_|_$/g, "") || "index";
      const lang = new URL(url).searchParams.get("lang") || "de";
      // The browser's own Accept-Language (en-US) would pick English for a German URL.
      await page.setExtraHTTPHeaders({ "Accept-Language": lang === "en" ? "en" : "de-DE,de;q=0.9" });
      const res = await page.goto(url, { waitUntil: "load" });
      const htmlLang = await page.evaluate(() => document.documentElement.lang);
      if (htmlLang !== lang) { console.error(`${url}: html lang ${htmlLang}, wanted ${lang}`); failed++; }
      const shot = path.join(outDir, `${state}-${slug}-${lang}-${w.name}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      // Horizontal scrolling at phone width is a reflow failure (WCAG 1.4.10).
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      // axe runs in the page's world; the page's CSP forbids scripts of its own, not the
      // automation's (puppeteer evaluates through the DevTools protocol).
      await page.evaluate(axeSource);
      const result = await page.evaluate(async () =>
        await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
      const v = result.violations;
      report.push({ state, url, width: w.name, status: res.status(), screenshot: shot, violations: v.length, passes: result.passes.length, overflow, console_errors: blocked });
      if (v.length || overflow || res.status() !== 200) {
        failed++;
        for (const x of v) {
          console.error(`${state} ${url} ${w.name}: ${x.id} (${x.impact}): ${x.help}`);
          for (const n of x.nodes.slice(0, 5)) console.error(`    ${n.target.join(" ")}: ${n.failureSummary}`);
        }
        if (overflow) console.error(`${state} ${url} ${w.name}: scrolls sideways`);
      }
      console.log(`${state.padEnd(22)} ${w.name.padEnd(7)} ${String(res.status())} axe violations ${v.length}, passes ${result.passes.length}${overflow ? ", SCROLLS SIDEWAYS" : ""}  ${url}`);
      await page.close();
    }
  }
} finally {
  await browser.close();
}
writeFileSync(path.join(outDir, `${state}.json`), JSON.stringify(report, null, 2));
process.exit(failed ? 1 : 0);
