// nncore demo page: draw on the canvas; after each stroke the raw ink goes to the server, which
// preprocesses it as MNIST was (nncore/preprocess.py, the one definition) and answers with the
// 28x28 image the network received, its probabilities and its prediction. No preprocessing here.
"use strict";

// The brush, in pixels of the 280-pixel canvas: a digit drawn 150-250 pixels tall is scaled to
// 20 pixels, which makes these strokes 1.5-2.5 pixels wide, as MNIST's are.
const BRUSH_WIDTH = 18;

const drawing = document.getElementById("drawing");
const pen = drawing.getContext("2d", { willReadFrequently: true });
const received = document.getElementById("received").getContext("2d");
const statusLine = document.getElementById("status");
const bars = document.getElementById("bars");

let classNames = [];
let stroke = null;      // the stroke being drawn: { pointerId, last: [x, y] }
let latestRequest = 0;  // replies to older requests than this are not shown

// ---------------------------------------------------------------- talking to the server

async function readReply(response) {
  if (!response.ok) {
    throw new Error((await response.text()).trim() || `${response.status} ${response.statusText}`);
  }
  return response.json();
}

async function getJson(path) {
  return readReply(await fetch(path));
}

async function postJson(path, body) {
  const options = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  return readReply(await fetch(path, options));
}

function say(message, isError = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", isError);
}

// ---------------------------------------------------------------- drawing

function clearDrawing() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, drawing.width, drawing.height);
}

function canvasPoint(event) {
  const box = drawing.getBoundingClientRect();
  return [(event.clientX - box.left) * drawing.width / box.width,
          (event.clientY - box.top) * drawing.height / box.height];
}

function inkLine(from, to) {
  pen.strokeStyle = "#fff";
  pen.lineWidth = BRUSH_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(from[0], from[1]);
  pen.lineTo(to[0], to[1]);
  pen.stroke();
}

drawing.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || stroke !== null) return;
  drawing.setPointerCapture(event.pointerId);
  const point = canvasPoint(event);
  stroke = { pointerId: event.pointerId, last: point };
  inkLine(point, point);  // a tap leaves a dot
  event.preventDefault();
});

drawing.addEventListener("pointermove", (event) => {
  if (stroke === null || event.pointerId !== stroke.pointerId) return;
  // A pen or a fast mouse sends several positions per frame; drawing them all keeps curves round.
  const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const each of coalesced.length ? coalesced : [event]) {
    const point = canvasPoint(each);
    inkLine(stroke.last, point);
    stroke.last = point;
  }
});

function endStroke(event) {
  if (stroke === null || event.pointerId !== stroke.pointerId) return;
  stroke = null;
  submitCanvas().catch((error) => say(error.message, true));
}
drawing.addEventListener("pointerup", endStroke);
drawing.addEventListener("pointercancel", endStroke);

// ---------------------------------------------------------------- the network's answer

function canvasInk() {
  const rgba = pen.getImageData(0, 0, drawing.width, drawing.height).data;
  const ink = new Uint8Array(drawing.width * drawing.height);
  for (let i = 0; i < ink.length; i++) ink[i] = rgba[4 * i];  // white ink: any channel
  return ink;
}

function base64(bytes) {
  let text = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(start, start + 0x8000));
  }
  return btoa(text);
}

// Send the canvas's ink; show the answer unless a newer request was sent meanwhile. Returns the reply.
async function submitCanvas() {
  const ink = canvasInk();
  const request = ++latestRequest;
  if (!ink.some((value) => value > 0)) {
    showNothing();
    return null;
  }
  const reply = await postJson("/api/predict", { width: drawing.width, height: drawing.height, ink: base64(ink) });
  if (request === latestRequest) {
    showAnswer(reply);
    say("The network's answer to your drawing. Clear to start again.");
  }
  return reply;
}

async function showTestImage() {
  const request = ++latestRequest;
  const reply = await getJson("/api/test-image");
  if (request === latestRequest) {
    showAnswer(reply);
    say(`Test image ${reply.index} of ${reply.source}, as the network sees it: compare it with your drawing.`);
  }
  return reply;
}

function showAnswer(reply) {
  const image = received.createImageData(28, 28);
  reply.image.forEach((value, i) => {
    image.data.set([value, value, value, 255], 4 * i);
  });
  received.putImageData(image, 0, 0);
  reply.probabilities.forEach((probability, k) => {
    const row = bars.children[k];
    row.dataset.probability = String(probability);  // the float64 the server sent, for a reader to check
    row.querySelector(".bar").style.width = `${100 * probability}%`;
    row.querySelector(".value").textContent = `${(100 * probability).toFixed(1)}%`;
    row.classList.toggle("predicted", k === reply.predicted);
  });
  document.getElementById("predicted").textContent = reply.class_name;
  const truth = document.getElementById("truth");
  truth.textContent = reply.label_name === undefined ? "" : `(true label: ${reply.label_name})`;
  truth.classList.toggle("wrong", reply.label !== undefined && reply.label !== reply.predicted);
}

function showNothing() {
  received.fillStyle = "#000";
  received.fillRect(0, 0, 28, 28);
  for (const row of bars.children) {
    delete row.dataset.probability;
    row.querySelector(".bar").style.width = "0";
    row.querySelector(".value").textContent = "";
    row.classList.remove("predicted");
  }
  document.getElementById("predicted").textContent = "–";
  document.getElementById("truth").textContent = "";
}

// ---------------------------------------------------------------- the model

function makeBars(names) {
  bars.replaceChildren(...names.map((name) => {
    const row = document.createElement("li");
    row.innerHTML = '<span class="name"></span><span class="track"><span class="bar"></span></span><span class="value"></span>';
    row.querySelector(".name").textContent = name;
    return row;
  }));
}

// Blue for negative weights, white for 0, red for positive (as nncore.plot's RdBu_r).
function weightColour(level) {
  const t = (level - 128) / 127;
  const [r, g, b] = t < 0 ? [33, 102, 172] : [178, 24, 43];
  const a = Math.min(Math.abs(t), 1);
  return [255 + (r - 255) * a, 255 + (g - 255) * a, 255 + (b - 255) * a];
}

function showWeights(firstLayer) {
  const levels = Uint8Array.from(atob(firstLayer.weights), (c) => c.charCodeAt(0));
  const pictures = [];
  for (let unit = 0; unit < firstLayer.units; unit++) {
    const picture = document.createElement("canvas");
    picture.width = picture.height = 28;
    const context = picture.getContext("2d");
    const image = context.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      image.data.set([...weightColour(levels[unit * 784 + i]), 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
    pictures.push(picture);
  }
  document.getElementById("weights").replaceChildren(...pictures);
  document.getElementById("weights-caption").textContent =
    `${firstLayer.units} of ${firstLayer.of_units} units: each one's 784 incoming weights as a 28×28 image ` +
    `(red positive, blue negative, ±${firstLayer.limit.toPrecision(2)} full colour).`;
}

async function start() {
  clearDrawing();
  const model = await getJson("/api/model");
  classNames = model.class_names;
  const trainedOn = model.dataset ? `trained on ${model.dataset}` : "trained on unnamed data";
  document.getElementById("model-title").textContent = `${model.title}: ${model.layer_sizes.join("-")}, ${trainedOn}`;
  makeBars(classNames);
  showNothing();
  showWeights(model.first_layer);
  return model;
}

document.getElementById("clear").addEventListener("click", () => {
  latestRequest++;
  clearDrawing();
  showNothing();
  say("Cleared: draw a digit.");
});
document.getElementById("test-image").addEventListener("click", () => {
  showTestImage().catch((error) => say(error.message, true));
});

// For scripts driving the page (the browser tests): the page's own paths, and when it is ready.
window.nncoreDemo = { submitCanvas, showTestImage, ready: start() };
window.nncoreDemo.ready.catch((error) => say(error.message, true));
