// The web page's logic: submit a job, follow its server-sent events, show the result and keep a
// gallery of this session's images (sessionStorage, so a reload keeps them).
const $ = (id) => document.getElementById(id);
const state = { job: null, source: null };

// A service started with --api-key wants the key on every call: fetch sends it as a bearer token;
// EventSource and <img> cannot send headers, so their URLs carry it as ?api_key=.
const apiKey = () => localStorage.getItem('apiKey') || '';
const api = (path, init = {}) =>
  fetch(path, {
    ...init,
    headers: { ...(init.headers || {}), ...(apiKey() ? { authorization: `Bearer ${apiKey()}` } : {}) },
  });
const withKey = (url) =>
  apiKey() ? `${url}${url.includes('?') ? '&' : '?'}api_key=${encodeURIComponent(apiKey())}` : url;

function fillSelect(select, values, selected) {
  select.replaceChildren(...values.map((v) => new Option(v, v, v === selected, v === selected)));
}

async function init() {
  $('apikey').value = apiKey();
  const res = await api('/v1/models');
  const body = await res.json();
  if (res.status === 401) {
    $('error').textContent = 'This service needs an API key: enter it above.';
    $('keyrow').hidden = false;
    return;
  }
  fillSelect(
    $('model'),
    body.data.map((m) => m.id),
  );
  fillSelect($('guidance'), body.options.guidance_methods, 'cfg');
  // each model says what it can do: its samplers, native size and guidance scale
  const showModel = (model) => {
    if (!model) return;
    fillSelect($('sampler'), model.samplers ?? body.options.samplers, model.default_sampler);
    $('scale').placeholder = `default ${model.default_guidance ?? ''}`.trim();
    const native = model.native_size;
    if (![...$('size').options].some((o) => o.value === native)) $('size').add(new Option(native, native));
    $('size').value = native;
  };
  showModel(body.data[0]);
  $('model').addEventListener('change', () => showModel(body.data.find((m) => m.id === $('model').value)));
  renderGallery();
}

function gallery() {
  return JSON.parse(sessionStorage.getItem('gallery') || '[]');
}

function renderGallery() {
  $('gallery').replaceChildren(
    ...gallery().map((item) => {
      const fig = document.createElement('figure');
      const img = new Image();
      img.src = withKey(item.url);
      img.alt = item.prompt;
      const cap = document.createElement('figcaption');
      cap.textContent = `${item.prompt} · seed ${item.seed}`;
      fig.append(img, cap);
      return fig;
    }),
  );
}

function setBusy(busy) {
  $('generate').disabled = busy;
  $('cancel').disabled = !busy;
}

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('error').textContent = '';
  $('params').textContent = '';
  $('result').removeAttribute('src');
  $('preview').removeAttribute('src');
  $('progress').value = 0;
  const body = {
    model: $('model').value,
    prompt: $('prompt').value,
    size: $('size').value,
    sampler: $('sampler').value,
    guidance_method: $('guidance').value,
    preview: true,
  };
  if ($('negative').value) body.negative_prompt = $('negative').value;
  if ($('scale').value !== '') body.guidance_scale = Number($('scale').value);
  if ($('steps').value !== '') body.steps = Number($('steps').value);
  if ($('seed').value !== '') body.seed = Number($('seed').value);
  setBusy(true);
  const res = await api('/jobs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const job = await res.json();
  if (!res.ok) {
    $('error').textContent = job.error?.message ?? `HTTP ${res.status}`;
    setBusy(false);
    return;
  }
  state.job = job;
  $('status').textContent = 'Queued';
  follow(job);
});

function follow(job) {
  const source = new EventSource(withKey(job.links.events));
  state.source = source;
  source.addEventListener('status', (e) => {
    const j = JSON.parse(e.data);
    $('status').textContent = j.status === 'queued' ? 'Queued' : 'Running';
  });
  source.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    $('progress').value = p.fraction;
    $('status').textContent =
      `Step ${p.step} / ${p.steps} · ${Math.round(p.fraction * 100)}% · ETA ${(p.etaMs / 1000).toFixed(1)} s`;
    if (p.preview) $('preview').src = p.preview;
  });
  source.addEventListener('done', (e) => {
    source.close();
    state.source = null;
    setBusy(false);
    const j = JSON.parse(e.data);
    if (j.status !== 'succeeded') {
      $('status').textContent = j.status === 'cancelled' ? 'Cancelled' : 'Failed';
      $('error').textContent = j.error?.message ?? '';
      return;
    }
    $('progress').value = 1;
    $('status').textContent = `Done in ${(j.timings.runMs / 1000).toFixed(1)} s`;
    const url = j.image_urls[0];
    $('result').src = withKey(url);
    const r = j.results[0];
    $('params').textContent = r.parameters;
    const items = gallery();
    for (let i = 0; i < j.image_urls.length; i++)
      items.unshift({ url: j.image_urls[i], prompt: j.request.prompt, seed: j.results[i].seed });
    sessionStorage.setItem('gallery', JSON.stringify(items.slice(0, 48)));
    renderGallery();
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setBusy(false);
  };
}

$('cancel').addEventListener('click', async () => {
  if (state.job) await api(`/jobs/${state.job.id}`, { method: 'DELETE' });
});

$('apikey').addEventListener('change', () => {
  localStorage.setItem('apiKey', $('apikey').value);
  $('error').textContent = '';
  init().catch((err) => {
    $('error').textContent = String(err);
  });
});

init().catch((err) => {
  $('error').textContent = String(err);
});
