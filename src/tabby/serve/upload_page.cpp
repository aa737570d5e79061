#include "tabby/serve/upload_page.h"

#include <nlohmann/json.hpp>

#include "tabby/report/html.h"

namespace tabby::serve {

namespace {

// The models reach the script as JSON; "</" is escaped so no name can end the script.
std::string script_json(const std::vector<std::string>& models) {
  std::string j = nlohmann::json(models).dump();
  std::string out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (j[i] == '<' && i + 1 < j.size() && j[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else {
      out += j[i];
    }
  }
  return out;
}

const char* kStyle = R"css(
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } select, button { font-size: 1rem; }
#drop { border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; margin: 1rem 0; }
#drop.over { background: #eef5ff; border-color: #36c; }
.result { display: flex; gap: 1rem; align-items: flex-start; border-bottom: 1px solid #ddd; padding: .75rem 0; }
.result img { width: 128px; height: 128px; object-fit: cover; border-radius: 4px; background: #eee; }
.label { font-weight: 600; font-size: 1.1rem; }
.error { color: #b00; }
.bar { display: flex; align-items: center; gap: .5rem; margin: .2rem 0; font-size: .9rem; }
.bar span.name { width: 10rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar span.fill { display: inline-block; height: .8rem; background: #36c; border-radius: 2px; }
small { color: #666; }
)css";

const char* kScript = R"js(
const models = JSON.parse(document.getElementById('models').textContent);
const select = document.getElementById('model');
for (const m of models) { const o = document.createElement('option'); o.value = o.textContent = m; select.appendChild(o); }
const results = document.getElementById('results');
function bar(name, p) {
  const row = document.createElement('div'); row.className = 'bar';
  const n = document.createElement('span'); n.className = 'name'; n.textContent = name;
  const f = document.createElement('span'); f.className = 'fill'; f.style.width = Math.max(1, p * 200) + 'px';
  const v = document.createElement('span'); v.textContent = (100 * p).toFixed(1) + '%';
  row.append(n, f, v); return row;
}
async function classify(file) {
  const item = document.createElement('div'); item.className = 'result';
  const img = document.createElement('img'); img.alt = file.name; img.src = URL.createObjectURL(file);
  const info = document.createElement('div');
  const label = document.createElement('div'); label.className = 'label'; label.textContent = '…';
  const name = document.createElement('small'); name.textContent = file.name;
  info.append(label, name); item.append(img, info); results.prepend(item);
  try {
    const r = await fetch('/predictions/' + encodeURIComponent(select.value) + '?top_k=5',
                          {method: 'POST', body: file, headers: {'Content-Type': file.type || 'application/octet-stream'}});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
    label.textContent = body.label;
    label.dataset.probability = body.probability;
    for (const t of body.top_k) info.appendChild(bar(t.label, t.probability));
  } catch (e) {
    label.textContent = 'error'; label.classList.add('error');
    const m = document.createElement('div'); m.className = 'error'; m.textContent = e.message; info.appendChild(m);
  }
}
function take(files) { for (const f of files) classify(f); }
const input = document.getElementById('files');
input.addEventListener('change', () => { take(input.files); input.value = ''; });
const drop = document.getElementById('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); take(e.dataTransfer.files); });
)js";

}  // namespace

std::string upload_page(const std::vector<std::string>& models, const std::string& version) {
  std::string page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                     "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; img-src 'self' blob:; "
                     "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n"
                     "<title>tabby serve</title>\n<style>";
  page += kStyle;
  page += "</style></head><body>\n<h1>tabby: classify photos</h1>\n"
          "<p><label>Model <select id=\"model\"></select></label></p>\n"
          "<div id=\"drop\">Drop photos here, or <input type=\"file\" id=\"files\" accept=\"image/*\" multiple></div>\n"
          "<div id=\"results\"></div>\n<p><small>tabby " +
          report::html_escape(version) +
          " · <a href=\"/v2\">/v2</a> · <a href=\"/metrics\">/metrics</a></small></p>\n"
          "<script type=\"application/json\" id=\"models\">" +
          script_json(models) + "</script>\n<script>";
  page += kScript;
  page += "</script></body></html>\n";
  return page;
}

}  // namespace tabby::serve
