//! The page shell: head, inline style and refresh script, header with the
//! signed-in identity and sign-out.

use super::text::escape;

/// Seconds between automatic reloads (skipped while a form is open).
pub const REFRESH_SECS: u32 = 20;

/// What every page needs besides its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageContext {
    /// The current time, ms since the epoch (times are shown relative to it).
    pub now_ms: u64,
    /// Path segments below the root: links are relative (`../` each), so
    /// the pages work under any prefix (a Function URL, an emulator's
    /// `/lambda-url/<fn>/`, a signing proxy).
    pub depth: usize,
    /// Who is signed in with a session cookie (shows the sign-out button).
    pub signed_in: Option<String>,
    /// The CSRF token the forms carry (cookie sessions only).
    pub csrf: Option<String>,
    /// A one-line notice at the top (e.g. the outcome of the last command).
    pub notice: Option<String>,
}

impl PageContext {
    /// A context at the root, at `now_ms`.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            ..Self::default()
        }
    }

    /// The same context `depth` segments below the root.
    #[must_use]
    pub fn at_depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    /// The same context for a cookie session of `who`, with its CSRF token.
    #[must_use]
    pub fn session(mut self, who: impl Into<String>, csrf: impl Into<String>) -> Self {
        self.signed_in = Some(who.into());
        self.csrf = Some(csrf.into());
        self
    }

    /// The same context with a notice.
    #[must_use]
    pub fn notice(mut self, notice: impl Into<String>) -> Self {
        self.notice = Some(notice.into());
        self
    }

    /// The relative path to the root (`./`, `../../`).
    pub fn base(&self) -> String {
        if self.depth == 0 {
            "./".to_owned()
        } else {
            "../".repeat(self.depth)
        }
    }

    /// The hidden CSRF field forms carry (empty without a session).
    pub fn csrf_field(&self) -> String {
        self.csrf.as_deref().map_or_else(String::new, |t| {
            format!(
                "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                escape(t)
            )
        })
    }
}

const STYLE: &str = "\
:root{color-scheme:light;--fg:#1a1a1a;--muted:#4a4a4a;--line:#c8c8c8;--accent:#1f5fa8;--canary:#b3400a;--mark:#6b21a8;--bad:#a30000;--ok:#146c2e;--warn:#7a5200}\
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:#fff;margin:0}\
header{display:flex;gap:1rem;align-items:center;justify-content:space-between;padding:.6rem 1.2rem;background:#f2f4f7;border-bottom:1px solid var(--line)}\
header h1{font-size:1.15rem;margin:0}header a{color:inherit}main{padding:1rem 1.2rem;max-width:1100px}\
h2{font-size:1.3rem;margin:.2rem 0 .6rem}h3{font-size:1.05rem;margin:1.4rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}\
a{color:var(--accent)}:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f7f7f7}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{color:var(--muted)}dd{margin:0}\
code{font-family:ui-monospace,monospace;font-size:.92em}.muted{color:var(--muted)}\
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;border:1px solid currentColor;font-size:.85rem;font-weight:600}\
.ALARM,.bad{color:var(--bad)}.OK,.good{color:var(--ok)}.INSUFFICIENT_DATA,.UNREADABLE,.warn{color:var(--warn)}\
.notice{padding:.5rem .8rem;border-left:4px solid var(--accent);background:#eef4fb;margin-bottom:1rem}\
.error{padding:.5rem .8rem;border-left:4px solid var(--bad);background:#fbeeee;margin-bottom:1rem}\
ol.steps{display:flex;list-style:none;padding:0;margin:.4rem 0;gap:2px}ol.steps li{flex:1;text-align:center;padding:.35rem .2rem;background:#e6e9ee;font-size:.9rem}\
ol.steps li.done{background:#9ec1e8}ol.steps li.current{background:var(--accent);color:#fff;font-weight:700}ol.steps li.gate{border-top:4px solid var(--mark)}\
.chart svg{width:100%;height:auto;max-width:820px;display:block}.legend span{margin-right:1rem}\
.sw{display:inline-block;width:.9rem;height:.25rem;vertical-align:middle;margin-right:.3rem}\
.commands{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start}details.cmd{border:1px solid var(--line);border-radius:.3rem;padding:.3rem .6rem;min-width:14rem}\
details.cmd summary{cursor:pointer;font-weight:600}details.cmd[open]{background:#fafafa}form label{display:block;margin:.4rem 0 .1rem}\
input[type=text],input[type=password],textarea{width:100%;font:inherit;padding:.3rem;border:1px solid #767676;border-radius:.2rem}\
button{font:inherit;padding:.3rem .8rem;margin-top:.4rem;border:1px solid #1a4f8c;background:var(--accent);color:#fff;border-radius:.2rem;cursor:pointer}\
button.danger{background:var(--bad);border-color:#7a0000}header button{background:#fff;color:var(--fg);border-color:#767676;margin:0}";

/// Reloads every [`REFRESH_SECS`] unless a `<details>` is open or a field
/// has focus or text (an operator filling in a reason keeps it).
const SCRIPT: &str = "setInterval(function(){var d=document;\
if(d.querySelector('details[open]')||(d.activeElement&&/INPUT|TEXTAREA|BUTTON|SUMMARY/.test(d.activeElement.tagName)))return;\
location.reload()},REFRESH_MS);";

/// A whole page: `title` (escaped here) and `body` (already HTML).
pub fn page(title: &str, ctx: &PageContext, body: &str, refresh: bool) -> String {
    let base = ctx.base();
    let who = ctx.signed_in.as_deref().map_or_else(String::new, |w| {
        format!(
            "<form method=\"post\" action=\"{base}signout\"><span class=\"muted\">Signed in as <code>{}</code></span> \
{}<button type=\"submit\">Sign out</button></form>",
            escape(w),
            ctx.csrf_field()
        )
    });
    let notice = ctx.notice.as_deref().map_or_else(String::new, |n| {
        format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n))
    });
    let script = if refresh {
        format!(
            "<script>{}</script>",
            SCRIPT.replace("REFRESH_MS", &(REFRESH_SECS * 1000).to_string())
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title} · Tidegate</title><style>{STYLE}</style></head>\n<body><header>\
<h1><a href=\"{base}\">Tidegate rollouts</a></h1>{who}</header>\n<main>{notice}{body}</main>{script}</body></html>\n",
        title = escape(title),
    )
}
