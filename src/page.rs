//! The page served at `/`: its markup, style and script, joined into one document at build time.
//!
//! They are kept apart in `static/` so each can be read and edited as what it is:
//! `head.html` (the `<head>`'s metadata and the Content-Security-Policy), `style.css`,
//! `body.html` (the markup) and `app.js`. The browser still gets one document in one
//! request, with the style inlined in `<style>` and the script in `<script>`, which is
//! what the page's policy allows (`style-src` and `script-src` are `'unsafe-inline'`
//! only). The binary carries the page, so it runs from any directory.

/// The page served at `/`, one HTML document.
pub const PAGE: &str = concat!(
    "<!doctype html>\n<html lang=\"en\">\n<head>\n",
    include_str!("../static/head.html"),
    "<style>\n",
    include_str!("../static/style.css"),
    "</style>\n</head>\n<body>\n",
    include_str!("../static/body.html"),
    "\n<script>\n",
    include_str!("../static/app.js"),
    "</script>\n\n</body>\n</html>\n",
);
