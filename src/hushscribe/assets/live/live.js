// The live captions page: the microphone's audio to /v1/realtime (OpenAI's Realtime API, transcription mode),
// captions back. Committed words are plain, the words still being heard (which may change) dimmed.
"use strict";

const RATE = 24000;  // OpenAI's PCM rate
const FRAME = RATE / 10;  // 100 ms of audio per message
const $ = (id) => document.getElementById(id);
let socket = null, context = null, microphone = null, stopping = null;
const lines = new Map();  // item_id → {element, start, text, final}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function clock(ms) {
  const s = Math.floor(ms / 1000);
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, "0")).join(":");
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function line(item, startMs) {
  if (!lines.has(item)) {
    const element = document.createElement("p");
    element.className = "line";
    element.dataset.item = item;
    const time = document.createElement("time");
    time.textContent = `[${clock(startMs || 0)}]`;
    const committed = document.createElement("span");
    committed.className = "committed";
    const tentative = document.createElement("span");
    tentative.className = "tentative";
    element.append(time, committed, tentative);
    $("captions").append(element);
    lines.set(item, {element, committed, tentative, start: startMs || 0, text: "", final: false});
  }
  return lines.get(item);
}

function received(event) {
  switch (event.type) {
    case "input_audio_buffer.speech_started":
      line(event.item_id, event.audio_start_ms);
      status("Hearing speech…");
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const entry = line(event.item_id);
      entry.text += event.delta || "";
      entry.committed.textContent = entry.text;
      break;
    }
    case "hushscribe.transcription.tentative":
      line(event.item_id).tentative.textContent = event.text;
      break;
    case "conversation.item.input_audio_transcription.completed": {
      const entry = line(event.item_id);
      entry.text = event.transcript;
      entry.committed.textContent = entry.text;
      entry.tentative.textContent = "";
      entry.final = true;
      entry.element.classList.add("final");
      if (!entry.text) { entry.element.remove(); lines.delete(event.item_id); }
      $("save").disabled = ![...lines.values()].some((l) => l.final);
      if (stopping) stopping(); else status("Listening.");
      break;
    }
    case "error":
      if (stopping && event.error.code === "input_audio_buffer_commit_empty") { stopping(); break; }
      status(event.error.message, true);
      break;
  }
}

async function start() {
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    status("This browser lets a page use the microphone only over https or on this machine " +
           "(http://127.0.0.1 or http://localhost). Open the page there.", true);
    return;
  }
  $("start").disabled = true;
  try {
    microphone = await navigator.mediaDevices.getUserMedia({audio: {
      channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
  } catch (error) {
    status(`The microphone could not be opened (${error.name}): allow this page to use it, or plug one in.`, true);
    $("start").disabled = false;
    return;
  }
  context = new AudioContext({sampleRate: RATE});
  await context.audioWorklet.addModule("/live/worklet.js");
  const node = new AudioWorkletNode(context, "pcm16", {numberOfOutputs: 0, processorOptions: {frame: FRAME}});
  context.createMediaStreamSource(microphone).connect(node);
  const protocols = ["realtime"];
  if ($("key").value) protocols.push("openai-insecure-api-key." + $("key").value);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v1/realtime?intent=transcription`, protocols);
  socket.onopen = () => {
    const transcription = $("language").value ? {language: $("language").value} : {};
    socket.send(JSON.stringify({type: "session.update", session: {type: "transcription", audio: {input: {
      format: {type: "audio/pcm", rate: RATE}, transcription,
      turn_detection: {type: "server_vad", threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500}}}}}));
    node.port.onmessage = (message) => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({type: "input_audio_buffer.append", audio: base64(message.data)}));
      }
    };
    status("Listening.");
    $("stop").disabled = false;
  };
  socket.onmessage = (message) => received(JSON.parse(message.data));
  socket.onclose = (closed) => {
    if (!stopping && closed.code !== 1000) {
      status(closed.code === 1006 ? "The server refused or lost the connection (is an API key needed?)."
                                  : `The connection closed: ${closed.reason || closed.code}.`, true);
    }
    release();
  };
}

function release() {
  if (microphone) microphone.getTracks().forEach((track) => track.stop());
  if (context) context.close();
  microphone = context = null;
  socket = null;
  stopping = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stop() {
  if (!socket) return;
  $("stop").disabled = true;
  if (microphone) microphone.getTracks().forEach((track) => track.stop());
  status("Finishing the last words…");
  const open = socket;
  const done = () => { open.close(1000); status("Stopped."); release(); };
  stopping = done;
  open.send(JSON.stringify({type: "input_audio_buffer.commit"}));
  setTimeout(() => { if (stopping === done) done(); }, 10000);
}

function save() {
  const text = [...lines.values()].filter((l) => l.final)
    .map((l) => `[${clock(l.start)}] ${l.text}`).join("\n") + "\n";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "text/plain;charset=utf-8"}));
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  link.download = `live-${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-` +
                  `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}.txt`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("save").addEventListener("click", save);
