#!/usr/bin/env bash
# Checks a self-contained HTML report in headless Chromium: the page refers to
# nothing outside itself, loads without errors, and every <img> decodes
# (naturalWidth > 0). Optionally saves a screenshot to look at.
#
# Usage: check_report.sh [--min-images N] [--no-screenshot] REPORT.html [OUT.png]
#   OUT.png defaults to REPORT.png beside the report.
# Exit status: 0 all good; 1 a check failed; 2 bad usage or Chromium missing.
#
# How: a copy of the page gets a small probe script (errors, CSP violations and
# failed resources are recorded from the start; on 'load' it writes each
# image's size into the DOM), Chromium prints the DOM (--dump-dom), and the
# probe's lines are read back from it.
set -u

min_images=0
screenshot=1
while [ $# -gt 0 ]; do
  case "$1" in
    --min-images) min_images="${2:?--min-images needs a number}"; shift 2 ;;
    --no-screenshot) screenshot=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "check_report: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
report="${1:-}"
if [ -z "$report" ] || [ ! -f "$report" ]; then
  echo "check_report: report file '${report}' not found; usage: check_report.sh REPORT.html [OUT.png]" >&2
  exit 2
fi
out_png="${2:-${report%.*}.png}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "check_report: Chromium not found at $chromium; install Debian's chromium or set CHROMIUM" >&2
  exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tabby-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
report_abs="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"

status=0
fail() { echo "FAIL: $*"; status=1; }

# 1. Static check: nothing may be fetched from elsewhere.
if grep -Eiq '(src|href|action|poster|data)[[:space:]]*=[[:space:]]*["'"'"']?(https?:|//|file:)' "$report" ||
   grep -Eiq 'url\([[:space:]]*["'"'"']?(https?:|//)' "$report" || grep -Eiq '@import' "$report"; then
  fail "the page refers to an external resource"
  grep -Eio '(src|href)[[:space:]]*=[[:space:]]*["'"'"']?(https?:|//|file:)[^"'"'"' >]{0,60}' "$report" | head -5 | sed 's/^/  /'
fi

chromium_flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --no-default-browser-check
  --disable-background-networking --disable-component-update --disable-sync --disable-extensions
  --disable-default-apps --mute-audio --hide-scrollbars --user-data-dir="$work/profile")
run_chromium() {
  # HOME inside the scratch folder: Chromium leaves nothing in the real one.
  HOME="$work" timeout 90 "$chromium" "${chromium_flags[@]}" "$@"
}

# 2. The probe copy. The report's Content-Security-Policy forbids scripts, so
#    the copy's policy also allows this one inline script.
cat > "$work/probe.js" <<'JS'
<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) errors.push('resource failed to load: <' + t.tagName.toLowerCase() + '> ' + String(t.src || t.href || '').slice(0, 60));
    else errors.push('script error: ' + e.message);
  }, true);
  document.addEventListener('securitypolicyviolation', function (e) {
    errors.push('blocked by Content-Security-Policy: ' + e.violatedDirective + ' ' + String(e.blockedURI).slice(0, 60));
  });
  var consoleError = console.error;
  console.error = function () { errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); consoleError.apply(console, arguments); };
  window.addEventListener('load', function () {
    var lines = [];
    for (var i = 0; i < document.images.length; i++) {
      var im = document.images[i];
      var ok = im.complete && im.naturalWidth > 0 && im.naturalHeight > 0;
      lines.push((ok ? 'IMG-OK ' : 'IMG-BROKEN ') + i + ' ' + im.naturalWidth + 'x' + im.naturalHeight + ' alt=' + (im.alt || ''));
    }
    for (var j = 0; j < errors.length; j++) lines.push('PAGE-ERROR ' + errors[j]);
    var pre = document.createElement('pre');
    pre.id = 'tabby-check';
    pre.textContent = '\nTABBY-CHECK-BEGIN\n' + lines.join('\n') + '\nTABBY-CHECK-END\n';
    document.body.appendChild(pre);
  });
})();
</script>
JS
awk -v probe="$work/probe.js" '
  BEGIN { while ((getline line < probe) > 0) script = script line "\n" }
  !done && tolower($0) ~ /<head[^>]*>/ {
    match(tolower($0), /<head[^>]*>/); print substr($0, 1, RSTART + RLENGTH - 1); printf "%s", script;
    print substr($0, RSTART + RLENGTH); done = 1; next }
  { print }
  END { if (!done) printf "%s", script }
' "$report" | sed "s/default-src 'none';/default-src 'none'; script-src 'unsafe-inline';/" > "$work/page.html"
# Same folder as the report would be is not needed: a self-contained page has no relative links.

run_chromium --virtual-time-budget=5000 --dump-dom "file://$work/page.html" > "$work/dom.html" 2> "$work/dom.log"
if ! grep -q 'TABBY-CHECK-END' "$work/dom.html"; then
  fail "Chromium did not finish loading the page (no probe output)"
  tail -5 "$work/dom.log" | sed 's/^/  /'
else
  sed -n '/TABBY-CHECK-BEGIN/,/TABBY-CHECK-END/p' "$work/dom.html" | grep -E '^(IMG-|PAGE-ERROR)' |
    sed 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' > "$work/probe.txt" || true
  images=$(grep -c '^IMG-' "$work/probe.txt" || true)
  broken=$(grep -c '^IMG-BROKEN' "$work/probe.txt" || true)
  errors=$(grep -c '^PAGE-ERROR' "$work/probe.txt" || true)
  echo "images: $images ($broken broken); page errors: $errors"
  grep -E '^(IMG-BROKEN|PAGE-ERROR)' "$work/probe.txt" | head -20 | sed 's/^/  /'
  [ "$broken" -eq 0 ] || fail "$broken image(s) did not load"
  [ "$errors" -eq 0 ] || fail "$errors error(s) while loading the page"
  [ "$images" -ge "$min_images" ] || fail "expected at least $min_images images, found $images"
fi

# 3. A screenshot of the report itself (not the probe copy), to look at.
if [ "$screenshot" -eq 1 ]; then
  rm -f "$out_png"
  run_chromium --window-size=1200,3000 --screenshot="$out_png" "file://$report_abs" > "$work/shot.log" 2>&1
  if [ -s "$out_png" ]; then
    echo "screenshot: $out_png"
  else
    fail "Chromium wrote no screenshot"
    tail -5 "$work/shot.log" | sed 's/^/  /'
  fi
fi

[ "$status" -eq 0 ] && echo "OK: $report"
exit "$status"
