//! `/status`: one self-contained HTML page (inline CSS and JS, nothing fetched but
//! `api/status` from this server), rendered here with the numbers of the moment so it
//! reads right before (and without) JavaScript; `assets/status.js` then redraws the same
//! markup from `/api/status` every 2 s. The two renderers must produce the same markup:
//! change both.

use std::fmt::Write as _;

use super::history::HistorySnapshot;
use super::status::StatusReport;

const CSS: &str = include_str!("assets/status.css");
const JS: &str = include_str!("assets/status.js");

/// The whole page for `report`.
pub(crate) fn render(s: &StatusReport) -> String {
    let mut out = String::with_capacity(16 * 1024 + CSS.len() + JS.len());
    out.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>otlp gateway · status</title><style>",
    );
    out.push_str(CSS);
    out.push_str("</style></head><body>\n<header><h1>otlp gateway</h1>");
    let _ = write!(
        out,
        "<span class=\"item\">phase <span id=\"phase\" class=\"badge s-{p}\">{p}</span></span>\
         <span class=\"item\">uptime <b id=\"uptime\">{up}</b></span>\
         <span class=\"item\">version <b id=\"version\">{v}</b></span>\
         <span class=\"item\">degradation <span id=\"level\" class=\"badge lvl-{l}\">{ln} ({l})</span></span>\
         <span class=\"item\">memory <b id=\"memory\">{mem}</b></span>\
         <span id=\"conn\" class=\"conn\">server-rendered</span></header>\n<main>",
        p = esc(s.phase),
        up = duration(s.uptime_seconds),
        v = esc(s.version),
        l = s.degradation.level,
        ln = esc(s.degradation.name),
        mem = bytes(s.memory_bytes as f64),
    );
    let _ = write!(
        out,
        "<section class=\"card wide\"><h2>Pipeline</h2><div id=\"pipeline-diagram\">{}</div></section>",
        pipeline(s)
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Throughput, last 2 minutes</h2><div id=\"spark-throughput\" class=\"sparks\">{}</div></section>",
        throughput(&s.history)
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Queues, last 2 minutes</h2><div id=\"spark-queues\" class=\"sparks\">{}</div></section>",
        queues(&s.history)
    );
    let _ = write!(
        out,
        "<section class=\"card wide\"><h2>Exporters</h2><table><thead><tr><th>exporter</th><th>route</th>\
         <th>breaker</th><th class=\"num\">exported</th><th class=\"num\">retryable failures</th>\
         <th class=\"num\">permanent failures</th><th class=\"num\">retries</th><th class=\"num\">in flight</th>\
         <th>last error</th></tr></thead><tbody id=\"exporter-rows\">{}</tbody></table></section>",
        exporters(s)
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Ingress by signal</h2><table><thead><tr><th>signal</th>\
         <th class=\"num\">requests</th><th class=\"num\">received</th><th class=\"num\">accepted</th>\
         <th class=\"num\">refused</th><th class=\"num\">dropped</th><th class=\"num\">bytes</th></tr></thead>\
         <tbody id=\"signal-rows\">{}</tbody></table></section>",
        signals(s)
    );
    let _ = write!(
        out,
        "<section class=\"card\"><h2>Recent errors</h2><table><thead><tr><th>at (UTC)</th><th>error</th></tr></thead>\
         <tbody id=\"error-rows\">{}</tbody></table></section>",
        errors(s)
    );
    let _ = write!(
        out,
        "</main>\n<footer>updated <span id=\"updated\">{}</span> · <span id=\"js-rendered\"></span></footer>\n<script>",
        esc(&s.now)
    );
    // The script is ours and holds no "</script": inlining it as-is is safe.
    out.push_str(JS);
    out.push_str("</script></body></html>\n");
    out
}

/// HTML-escape text for element content and quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` as `1,234,567` (rounded to an integer).
pub(crate) fn num(n: f64) -> String {
    let n = n.round();
    let digits = format!("{}", n.abs() as u64);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0.0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(r: f64) -> String {
    if r < 10.0 { format!("{r:.1}") } else { num(r) }
}

pub(crate) fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut b = b;
    let mut i = 0;
    while b >= 1024.0 && i < UNITS.len() - 1 {
        b /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{} B", b.round())
    } else {
        format!("{b:.1} {}", UNITS[i])
    }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m {}s", s % 60)
    } else {
        format!("{m}m {}s", s % 60)
    }
}

fn spark(label: &str, points: &[f64], fmt: fn(f64) -> String) -> String {
    const W: f64 = 240.0;
    const H: f64 = 40.0;
    let top = points.iter().copied().fold(0.0, f64::max);
    let max = top.max(1.0);
    let step = W / (points.len().saturating_sub(1).max(1)) as f64;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                H - 2.0 - (p / max) * (H - 4.0)
            )
        })
        .collect();
    let mut svg = format!("<svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\">");
    if line.len() > 1 {
        let _ = write!(
            svg,
            "<polygon fill=\"rgba(88,166,255,.18)\" points=\"0,{H} {l} {x:.1},{H}\"/>\
             <polyline fill=\"none\" stroke=\"#58a6ff\" stroke-width=\"1.5\" points=\"{l}\"/>",
            l = line.join(" "),
            x = (points.len() - 1) as f64 * step,
        );
    } else {
        let _ = write!(
            svg,
            "<line x1=\"0\" y1=\"{y}\" x2=\"{W}\" y2=\"{y}\" stroke=\"#2a3440\"/>",
            y = H - 2.0
        );
    }
    svg.push_str("</svg>");
    format!(
        "<div class=\"spark\"><div class=\"l\"><span>{}</span><span>now <b>{}</b> · max {}</span></div>{svg}</div>",
        esc(label),
        esc(&fmt(points.last().copied().unwrap_or(0.0))),
        esc(&fmt(top)),
    )
}

fn boxed(class: &str, title: &str, kind: &str, lines: &[String]) -> String {
    let mut out = format!(
        "<div class=\"box {class}\"><div class=\"t\">{}</div>",
        esc(title)
    );
    if !kind.is_empty() {
        let _ = write!(out, "<div class=\"k\">{}</div>", esc(kind));
    }
    for l in lines {
        let _ = write!(out, "<div class=\"n\">{l}</div>");
    }
    out.push_str("</div>");
    out
}

const ARROW: &str = "<div class=\"arrow\">&#10140;</div>";

fn pipeline(s: &StatusReport) -> String {
    let value = |v: &serde_json::Map<String, serde_json::Value>, k: &str| {
        v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0)
    };
    let receivers: Vec<String> = s
        .sources
        .iter()
        .filter(|x| x.kind == "receiver")
        .map(|r| {
            let protocol = r
                .values
                .get("protocol")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("receiver");
            boxed(
                "",
                &r.name,
                protocol,
                &[
                    format!("{} requests", num(value(&r.values, "requests"))),
                    format!("{} items accepted", num(value(&r.values, "accepted_items"))),
                ],
            )
        })
        .collect();
    let receivers = if receivers.is_empty() {
        boxed(
            "",
            "OTLP in",
            "gRPC · HTTP",
            &[format!("{} requests", num(s.totals.requests as f64))],
        )
    } else {
        receivers.concat()
    };
    let mut protect = vec![
        format!("{} received", num(s.totals.received_items as f64)),
        format!("{} refused", num(s.totals.refused_items as f64)),
    ];
    for reason in ["rate_limited", "memory", "bad_data"] {
        let n: u64 = s
            .signals
            .values()
            .map(|x| x.refused.get(reason).map_or(0, |r| r.items))
            .sum();
        if n > 0 {
            protect.push(format!("{} {}", esc(reason), num(n as f64)));
        }
    }
    let dropped: u64 = s
        .signals
        .values()
        .map(|x| {
            x.dropped.get("sampled").copied().unwrap_or(0)
                + x.dropped.get("degraded").copied().unwrap_or(0)
        })
        .sum();
    let mut degrade = vec![
        format!("{} accepted", num(s.totals.accepted_items as f64)),
        format!("{} sampled/degraded", num(dropped as f64)),
    ];
    if let Some(mode) = s
        .sources
        .iter()
        .find(|x| x.kind == "degradation")
        .and_then(|c| c.values.get("mode"))
        .and_then(serde_json::Value::as_str)
    {
        degrade.push(esc(mode));
    }
    let routes: String = s
        .routes
        .iter()
        .map(|r| {
            let q = &r.queue;
            let qbox = boxed(
                "",
                &r.name,
                &format!("queue · {} · {}", q.kind, r.mode),
                &[
                    format!(
                        "{} entries · {}",
                        num(q.depth as f64),
                        bytes(q.bytes as f64)
                    ),
                    format!(
                        "<div class=\"fill\"><span style=\"width:{:.1}%\"></span></div>",
                        (q.fill * 100.0).min(100.0)
                    ),
                ],
            );
            let members: String = r
                .exporters
                .iter()
                .map(|e| {
                    boxed(
                        &format!("br-{}", e.breaker),
                        &e.name,
                        &format!("{} · breaker {}", e.kind, e.breaker),
                        &[
                            format!("{} exported", num(e.exported_total as f64)),
                            format!(
                                "{} failures",
                                num((e.retryable_failures + e.permanent_failures) as f64)
                            ),
                        ],
                    )
                })
                .collect();
            format!(
                "<div class=\"route\">{qbox}{ARROW}<div class=\"members\">{members}</div></div>"
            )
        })
        .collect();
    let routes = if routes.is_empty() {
        "<div class=\"empty\">no routes</div>".to_owned()
    } else {
        routes
    };
    format!(
        "<div class=\"pipeline\"><div class=\"stage\">{receivers}</div>{ARROW}\
         <div class=\"stage\">{protect}</div>{ARROW}<div class=\"stage\">{degrade}</div>{ARROW}\
         <div class=\"routes\">{routes}</div></div>",
        protect = boxed("", "protect", "auth · rate limit · memory", &protect),
        degrade = boxed(
            &format!("lvl-{}", s.degradation.level),
            "degrade",
            &format!("level {}", s.degradation.name),
            &degrade,
        ),
    )
}

fn throughput(h: &HistorySnapshot) -> String {
    [
        spark("received items/s", &h.received, rate),
        spark("accepted items/s", &h.accepted, rate),
        spark("refused items/s", &h.refused, rate),
        spark("exported items/s", &h.exported, rate),
    ]
    .concat()
}

fn queues(h: &HistorySnapshot) -> String {
    if h.queues.is_empty() {
        return "<div class=\"empty\">no queues</div>".into();
    }
    h.queues
        .iter()
        .map(|q| {
            spark(&format!("{} depth", q.route), &q.depth, num)
                + &spark(&format!("{} bytes", q.route), &q.bytes, bytes)
        })
        .collect()
}

fn exporters(s: &StatusReport) -> String {
    let mut rows = String::new();
    for r in &s.routes {
        for e in &r.exporters {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td><span class=\"badge br-{b}\">{b}</span></td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"msg\">{}</td></tr>",
                esc(&e.name),
                esc(&r.name),
                num(e.exported_total as f64),
                num(e.retryable_failures as f64),
                num(e.permanent_failures as f64),
                num(e.retries as f64),
                num(e.in_flight as f64),
                e.last_error
                    .as_ref()
                    .map_or_else(String::new, |l| esc(&l.message)),
                b = esc(e.breaker),
            );
        }
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"9\" class=\"empty\">no exporters</td></tr>");
    }
    rows
}

fn signals(s: &StatusReport) -> String {
    s.signals
        .iter()
        .map(|(k, x)| {
            let refused: u64 = x.refused.values().map(|r| r.items).sum();
            let dropped: u64 = x.dropped.values().sum();
            format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(k),
                num(x.requests as f64),
                num(x.received_items as f64),
                num(x.accepted_items as f64),
                num(refused as f64),
                num(dropped as f64),
                bytes(x.received_bytes as f64),
            )
        })
        .collect()
}

fn errors(s: &StatusReport) -> String {
    if s.recent_errors.is_empty() {
        return "<tr><td colspan=\"2\" class=\"empty\">no errors</td></tr>".into();
    }
    s.recent_errors
        .iter()
        .map(|e| {
            format!(
                "<tr><td class=\"at\">{}</td><td class=\"msg\">{}</td></tr>",
                esc(&e.at),
                esc(&e.message)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_script() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(999.0), "999");
        assert_eq!(num(1000.0), "1,000");
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(-1234.0), "-1,234");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
        assert_eq!(rate(2.345), "2.3");
        assert_eq!(rate(1234.4), "1,234");
        assert_eq!(duration(59.9), "0m 59s");
        assert_eq!(duration(3_725.0), "1h 2m 5s");
        assert_eq!(duration(90_061.0), "1d 1h 1m");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn script_and_style_cannot_close_their_elements_early() {
        assert!(!JS.contains("</script"));
        assert!(!CSS.contains("</style"));
    }

    #[test]
    fn sparkline_scales_to_its_maximum() {
        let html = spark("x", &[0.0, 5.0, 10.0], rate);
        assert!(
            html.contains("points=\"0.0,38.0 120.0,20.0 240.0,2.0\""),
            "{html}"
        );
        assert!(html.contains("now <b>10</b> · max 10"), "{html}");
        let empty = spark("x", &[], rate);
        assert!(empty.contains("<line"), "{empty}");
        assert!(empty.contains("now <b>0.0</b> · max 0.0"), "{empty}");
    }
}
