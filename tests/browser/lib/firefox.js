// Debian's Firefox ESR for the pages that must work in Firefox too (the bundle's player):
// launched headless through puppeteer-core over WebDriver BiDi, with every proxy setting
// pointed at a local listener that records what the browser asked the network for and
// answers nothing. Firefox's own background services (remote settings, on Mozilla's hosts)
// are recorded apart: they are the browser's, not the page's.

import net from "node:net";
import puppeteer from "puppeteer-core";

export const FIREFOX = process.env.FIREFOX || "/usr/bin/firefox-esr";

/** Hosts of Firefox's own services: what the browser asks for on its own, whatever the page. */
const BROWSER_OWN = /(^|\.)(mozilla\.(com|net|org)|firefox\.com|mozaws\.net)$/;

/**
 * A headless Firefox whose network goes to a recording dead end. Returns { browser, asked,
 * close }: `asked` lists "host:port" of every connection the page could have caused (HTTP
 * requests and CONNECTs through the proxy, Firefox's own services left out).
 */
export async function launchFirefox() {
  const asked = [];
  const sockets = new Set();
  const proxy = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.once("data", (d) => {
      // "CONNECT host:443 HTTP/1.1" or "GET http://host/path HTTP/1.1".
      const [method, target = "?"] = d.toString("latin1").split("\r\n")[0].split(" ");
      let host = target;
      if (method !== "CONNECT") try { host = new URL(target).host; } catch { /* not a URL */ }
      if (!BROWSER_OWN.test(host.replace(/:\d+$/, ""))) asked.push(host);
      s.destroy();
    });
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  const port = proxy.address().port;
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: {
      // Every scheme through the recording proxy, loopback included.
      "network.proxy.type": 1,
      "network.proxy.share_proxy_settings": true,
      "network.proxy.http": "127.0.0.1",
      "network.proxy.http_port": port,
      "network.proxy.ssl": "127.0.0.1",
      "network.proxy.ssl_port": port,
      "network.proxy.no_proxies_on": "",
      "network.proxy.allow_hijacking_localhost": true,
      "media.autoplay.default": 0,
    },
  });
  const close = async () => {
    await browser.close().catch(() => {});
    for (const s of sockets) s.destroy();
    proxy.close();
  };
  return { browser, asked, close };
}
