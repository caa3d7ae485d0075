//! The web console's HTML: the topology, the trace form and a drawn trace, rendered on
//! the server with every value escaped. One stylesheet and one small script (live
//! updates) inline: the page needs nothing else.

use super::topology::{HostRow, PortRow, Topology};
use crate::trace::explain::Report;
use std::fmt::Write;

/// `s` safe inside HTML text and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#1f2328}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
.hosts,.path{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
.host{border:2px solid #57606a;border-radius:6px;padding:.5em;min-width:14em}
.down{border-color:#cf222e}.ACTIVE{color:#1a7f37}.DOWN,.ERROR{color:#cf222e}.BUILD{color:#9a6700}
.step{border:1px solid #d0d7de;border-radius:4px;margin:.3em 0;padding:.3em;font-size:.85em}
.tunnel{align-self:center;font-weight:bold}
.verdict{padding:.8em;margin:1em 0;font-weight:bold;color:#fff;border-radius:6px}
.delivered,.controller{background:#1a7f37}.dropped,.lost{background:#cf222e}.left{background:#9a6700}
.error{background:#cf222e;color:#fff;padding:.8em}
form input{margin-right:.6em}";

/// Follows the store: asks `/console/wait` for a revision past the one shown, then
/// reloads the topology. Backs off when the server is away.
const SCRIPT: &str = "async function follow(){for(;;){const el=document.getElementById('revision');
const rev=el?el.dataset.rev:'0';try{const r=await fetch('/console/wait?after='+rev,{credentials:'same-origin'});
if(r.ok){const j=await r.json();if(String(j.revision)!==rev){const t=await fetch('/console/topology',{credentials:'same-origin'});
if(t.ok){document.getElementById('topology').innerHTML=await t.text();}}continue;}}catch(e){}
await new Promise(s=>setTimeout(s,3000));}}follow();";

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>Dragonflow console</h1>{body}\
         <script>{SCRIPT}</script></body></html>",
        esc(title)
    )
}

fn port_line(p: &PortRow) -> String {
    format!(
        "<li class=\"port\" title=\"{}\">{} <span class=\"{}\">{}</span> on {} {}</li>",
        esc(&p.id),
        esc(&p.label),
        p.status,
        p.status,
        esc(&p.network),
        esc(&p.addresses.join(", "))
    )
}

fn host_box(h: &HostRow, revision: u64) -> String {
    let state = match (h.alive, h.applied) {
        (false, Some(_)) => "controller down".to_string(),
        (false, None) => "no controller".to_string(),
        (true, Some(a)) if h.realized => format!("realized (applied {a})"),
        (true, a) => format!("behind: applied {} of {revision}", a.unwrap_or(0)),
    };
    let mut s = format!(
        "<div class=\"host{}\" data-host=\"{}\"><b>{}</b> {}<br><small>{}</small><ul>",
        if h.alive { "" } else { " down" },
        esc(&h.name),
        esc(&h.name),
        esc(h.tunnel_ip.as_deref().unwrap_or("")),
        esc(&state)
    );
    for p in &h.ports {
        s.push_str(&port_line(p));
    }
    s.push_str("</ul></div>");
    s
}

/// The topology block (also what live updates replace).
pub fn topology(t: &Topology) -> String {
    let mut s = format!(
        "<p id=\"revision\" data-rev=\"{0}\">Store revision {0}.</p><h2>Hosts</h2><div class=\"hosts\">",
        t.revision
    );
    for h in &t.hosts {
        s.push_str(&host_box(h, t.revision));
    }
    s.push_str("</div>");
    if !t.unbound.is_empty() {
        s.push_str("<h2>Ports bound nowhere</h2><ul>");
        for p in &t.unbound {
            s.push_str(&port_line(p));
        }
        s.push_str("</ul>");
    }
    s.push_str("<h2>Networks</h2><table><tr><th>network</th><th>subnets</th><th>ports</th></tr>");
    for n in &t.networks {
        let _ = write!(
            s,
            "<tr title=\"{}\"><td>{}{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.id),
            esc(&n.label),
            if n.external { " (external)" } else { "" },
            esc(&n.cidrs.join(", ")),
            n.ports
        );
    }
    s.push_str("</table><h2>Routers</h2><table><tr><th>router</th><th>joins</th></tr>");
    for r in &t.routers {
        let _ = write!(
            s,
            "<tr title=\"{}\"><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.label),
            esc(&r.links.join(", "))
        );
    }
    s.push_str("</table>");
    s
}

/// What the trace form was filled with.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct TraceForm {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// tcp, udp or icmp; empty: the trace's default.
    #[serde(default)]
    pub proto: String,
    /// new or established.
    #[serde(default)]
    pub state: String,
}

pub fn trace_form(f: &TraceForm) -> String {
    let sel = |v: &str, cur: &str| if v == cur { " selected" } else { "" };
    format!(
        "<h2>Trace a packet</h2><form id=\"trace\" method=\"get\" action=\"/console/trace\">\
         from <input id=\"from\" name=\"from\" value=\"{}\" placeholder=\"port name, id or IP\">\
         to <input id=\"to\" name=\"to\" value=\"{}\" placeholder=\"IP or IP:port\">\
         <select name=\"proto\"><option value=\"\">default</option>\
         <option{}>tcp</option><option{}>udp</option><option{}>icmp</option></select>\
         <select name=\"state\"><option{}>new</option><option{}>established</option></select>\
         <button id=\"go\" type=\"submit\">Trace</button></form>",
        esc(&f.from),
        esc(&f.to),
        sel("tcp", &f.proto),
        sel("udp", &f.proto),
        sel("icmp", &f.proto),
        sel("new", &f.state),
        sel("established", &f.state),
    )
}

/// The verdict first (in view however long the path is), then the path: one box per
/// host, its steps in order, the tunnels between them.
pub fn trace(r: &Report) -> String {
    let mut s = format!(
        "<div id=\"verdict\" class=\"verdict {}\">{}</div><div class=\"path\" id=\"path\">",
        r.outcome,
        esc(&r.verdict)
    );
    let mut host: Option<&str> = None;
    for step in &r.steps {
        if host != Some(step.host.as_str()) {
            if host.is_some() {
                s.push_str("</div><div class=\"tunnel\">&rarr; tunnel &rarr;</div>");
            }
            host = Some(&step.host);
            let _ = write!(s, "<div class=\"host\"><b>{}</b>", esc(&step.host));
        }
        let _ = write!(
            s,
            "<div class=\"step\" style=\"margin-left:{}em\">table {} <b>{}</b> ({})<br>{}</div>",
            step.depth,
            step.table,
            esc(step.table_name),
            esc(&step.app),
            esc(&step.owner)
        );
    }
    if host.is_some() {
        s.push_str("</div>");
    }
    s.push_str("</div>");
    s
}

/// A refusal or failure, said plainly.
pub fn error(msg: &str) -> String {
    format!("<div id=\"error\" class=\"error\">{}</div>", esc(msg))
}

/// The login form (Keystone): a token from `openstack token issue`, kept in a cookie.
pub fn login(why: &str) -> String {
    format!(
        "{}<h2>Sign in</h2><p>The console shows every project: it needs a token with the \
         admin role (<code>openstack token issue -f value -c id</code>).</p>\
         <form method=\"post\" action=\"/console/login\"><input name=\"token\" type=\"password\" size=\"60\">\
         <button type=\"submit\">Sign in</button></form>",
        error(why)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_shown_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let f = TraceForm {
            from: "\"><script>".into(),
            ..TraceForm::default()
        };
        assert!(!trace_form(&f).contains("<script>"));
        assert!(error("<b>").contains("&lt;b&gt;"));
    }
}
