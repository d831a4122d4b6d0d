// seqlab's page: pick a model, send the API request its task takes, show the answer, its n-best list and the
// attention heat-map (output tokens x source tokens, SVG; hovering a cell shows its weight).  No build step,
// no libraries: everything the page needs is in this file, style.css and index.html.
"use strict";

const $ = (id) => document.getElementById(id);
const ENDPOINTS = { translation: "/v1/translate", lm: "/v1/generate", captioning: "/v1/caption",
                    classification: "/v1/classify", tagging: "/v1/tag" };
let models = [];

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  const body = await response.json();
  if (!response.ok) { $("status").textContent = body.error; return; }
  models = body.models.filter((m) => m.task in ENDPOINTS);
  $("model").innerHTML = "";
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.task})`;
    $("model").appendChild(option);
  }
  $("status").textContent = `${models.length} model(s)`;
  adapt();
}

function current() { return models.find((m) => m.name === $("model").value); }

function adapt() {  // show the inputs the chosen model's task takes
  const task = current() ? current().task : "translation";
  $("image-input").hidden = task !== "captioning";
  $("text-input").hidden = task === "captioning";
  $("text-label").textContent = task === "lm" ? "prompt" : "text";
  $("decode").hidden = !["translation", "lm", "captioning"].includes(task);
}

function number(id) { return Number($(id).value); }

async function imageBase64() {
  const file = $("image").files[0];
  if (!file) throw new Error("choose an image file first");
  return await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function request(task) {
  const model = current().name, text = $("text").value, sample = $("sample").checked;
  if (task === "translation") {
    const beam = number("beam");
    return { model, texts: [text], beam, nbest: Math.min(number("nbest"), beam), sample, attention: true,
             temperature: number("temperature"), top_k: number("top_k"), top_p: number("top_p") };
  }
  if (task === "lm") {
    return { model, prompts: [text], max_tokens: number("max_tokens"), sample, temperature: number("temperature"),
             top_k: number("top_k"), top_p: number("top_p") };
  }
  if (task === "captioning") return { model, images: [await imageBase64()], beam: number("beam") };
  return { model, texts: [text] };
}

function show(task, body) {
  $("nbest-list").innerHTML = "";
  $("heatmap").innerHTML = "";
  $("heatmap-title").hidden = true;
  if (task === "translation") {
    const t = body.translations[0];
    $("output").textContent = t.text;
    const choose = (index) => {  // the heat-map and the bold line follow the hypothesis clicked
      const hyp = t.nbest[index] || t;
      document.querySelectorAll("#nbest-list li").forEach((li, i) => { li.className = i === index ? "chosen" : ""; });
      $("output").textContent = hyp.text;
      $("heatmap").innerHTML = "";
      const weights = hyp.attention || (index === 0 ? t.attention : null);
      if (weights) drawHeatmap(weights, t.src_tokens.concat(["<eos>"]), (hyp.tokens || t.tokens).concat(["<eos>"]));
    };
    t.nbest.forEach((hyp, index) => {
      const item = document.createElement("li");
      item.innerHTML = `<span class="hyp"></span><span class="score"></span>`;
      item.querySelector(".hyp").textContent = hyp.text;
      item.querySelector(".score").textContent = hyp.score.toFixed(4);
      item.addEventListener("click", () => choose(index));
      $("nbest-list").appendChild(item);
    });
    choose(0);
  } else if (task === "lm") {
    $("output").textContent = body.generations[0].text;
  } else if (task === "captioning") {
    $("output").textContent = body.captions[0].text;
  } else if (task === "classification") {
    $("output").textContent = body.labels[0].label;
  } else if (task === "tagging") {
    const t = body.tagged[0];
    $("output").textContent = t.tokens.map((w, i) => `${w}/${t.tags[i]}`).join(" ");
  }
}

function drawHeatmap(weights, srcTokens, outTokens) {
  const rows = Math.min(weights.length, outTokens.length);
  const cols = Math.min(weights[0] ? weights[0].length : 0, srcTokens.length);
  const cell = 28, left = 110, top = 90;
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("width", left + cols * cell + 10);
  svg.setAttribute("height", top + rows * cell + 10);
  svg.dataset.rows = rows;
  svg.dataset.cols = cols;
  for (let j = 0; j < cols; j++) {
    const label = document.createElementNS(svgNS, "text");
    const x = left + j * cell + cell / 2, y = top - 6;
    label.setAttribute("transform", `translate(${x},${y}) rotate(-55)`);
    label.textContent = srcTokens[j];
    svg.appendChild(label);
  }
  for (let i = 0; i < rows; i++) {
    const label = document.createElementNS(svgNS, "text");
    label.setAttribute("x", left - 6);
    label.setAttribute("y", top + i * cell + cell * 0.65);
    label.setAttribute("text-anchor", "end");
    label.textContent = outTokens[i];
    svg.appendChild(label);
    for (let j = 0; j < cols; j++) {
      const w = weights[i][j];
      const rect = document.createElementNS(svgNS, "rect");
      rect.setAttribute("class", "cell");
      rect.setAttribute("x", left + j * cell);
      rect.setAttribute("y", top + i * cell);
      rect.setAttribute("width", cell - 1);
      rect.setAttribute("height", cell - 1);
      const shade = Math.round(255 * (1 - w));
      rect.setAttribute("fill", `rgb(${shade},${shade},${shade})`);
      rect.dataset.weight = w;
      const tip = `${outTokens[i]} ← ${srcTokens[j]}: ${w.toFixed(3)}`;
      rect.addEventListener("mousemove", (e) => {
        $("tooltip").style.display = "block";
        $("tooltip").style.left = e.clientX + 12 + "px";
        $("tooltip").style.top = e.clientY + 12 + "px";
        $("tooltip").textContent = tip;
      });
      rect.addEventListener("mouseleave", () => { $("tooltip").style.display = "none"; });
      const title = document.createElementNS(svgNS, "title");
      title.textContent = tip;
      rect.appendChild(title);
      svg.appendChild(rect);
    }
  }
  $("heatmap").appendChild(svg);
  $("heatmap-title").hidden = false;
}

async function run() {
  $("error").textContent = "";
  const task = current() ? current().task : null;
  if (!task) { $("error").textContent = "no model to use"; return; }
  $("run").disabled = true;
  try {
    const response = await fetch(ENDPOINTS[task], { method: "POST", headers: headers(),
                                                    body: JSON.stringify(await request(task)) });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    show(task, body);
    $("status").textContent = `${body.model}: ${body.elapsed_ms} ms`;
  } catch (error) {
    $("error").textContent = error.message;
  } finally {
    $("run").disabled = false;
  }
}

$("model").addEventListener("change", adapt);
$("run").addEventListener("click", run);
$("key").addEventListener("change", loadModels);
loadModels();
