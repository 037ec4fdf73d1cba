// Full-page screenshots of dashboard pages at desktop and phone widths, for reviewing a change by
// eye, with each page's horizontal overflow printed (scrollWidth against the window's width).
//
//   node e2e/screenshots.mjs http://127.0.0.1:8080 OUT_DIR /org/QAA /measure/broad_spectrum ...
//
// Set IPMO_USER and IPMO_PASSWORD to sign in first (for /gov pages); WIDTHS="1280,390" by default.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, out, ...paths] = process.argv.slice(2);
if (!base || !out || paths.length === 0) {
  console.error("usage: node e2e/screenshots.mjs BASE_URL OUT_DIR PATH...");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const widths = (process.env.WIDTHS ?? "1280,390").split(",").map(Number);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
for (const width of widths) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  if (process.env.IPMO_USER) {
    await page.goto(`${base}/login?next=/gov`);
    await page.locator("#username").fill(process.env.IPMO_USER);
    await page.locator("#password").fill(process.env.IPMO_PASSWORD ?? "");
    await page.locator("main form button[type=submit]").click();
    await page.waitForURL(/\/gov$/);
  }
  for (const path of paths) {
    const response = await page.goto(base + path);
    const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
    const name = `${path.replace(/[^a-zA-Z0-9]+/g, "_").replace(/^_|_$/g, "") || "home"}-${width}.png`;
    await page.screenshot({ path: `${out}/${name}`, fullPage: true });
    console.log(`${response?.status()} ${width}px scrollWidth ${scroll}${scroll > inner ? " OVERFLOWS" : ""} ${path} -> ${out}/${name}`);
  }
  await context.close();
}
await browser.close();
