// The transcript editor of the web page: a Streamlit component (web.py declares it; the page speaks to it with
// postMessage) holding the recording's player and one editable line per segment (web.editor_lines). A click on a
// line's time plays from there, a click on a word goes to it, and while the recording plays the line and the word
// being heard are marked. When an edited line is left, every line's text goes back to the page.
"use strict";

const player = document.getElementById("player");
const hint = document.getElementById("hint");
const list = document.getElementById("lines");
const HINTS = {
  audio: "Click a time to play from there, or a word to go to it. Click into a line to edit it: Enter keeps the " +
    "edit, Esc undoes it.",
  none: "Upload the recording again to play it from here. Click into a line to edit it: Enter keeps the edit, Esc " +
    "undoes it.",
};
let shown = null;  // the key of the transcript on show: another one is drawn afresh
let rows = [];  // per line: {line (as the page sent it), element, time, speaker, text (the editable part), words}
let marked = {row: null, word: null};
let following = false;  // a frame is asked for while the recording plays

function post(type, data = {}) {
  window.parent.postMessage({isStreamlitMessage: true, type, ...data}, "*");
}

function play(start) {
  if (!player.src) return;
  player.currentTime = start;
  player.play().catch(() => {});  // a browser may refuse to start it; the player's own button still can
}

function seek(start) {
  if (player.src) player.currentTime = start;
}

function fill(row, line) {
  row.line = line;
  row.element.dataset.start = line.start;  // for a reader of the page, and its tests
  row.time.textContent = line.stamp;
  row.speaker.textContent = line.speaker ? `${line.speaker}:` : "";
  row.speaker.hidden = !line.speaker;
  row.words = [];
  row.text.replaceChildren(...(line.pieces || [{text: line.text}]).map((piece) => {
    if (piece.start === undefined) return document.createTextNode(piece.text);
    const word = document.createElement("span");
    word.className = "word";
    word.textContent = piece.text;
    word.dataset.index = row.words.length;
    word.dataset.start = piece.start;
    row.words.push({element: word, start: piece.start, end: piece.end});
    return word;
  }));
}

function commit(row) {
  const typed = row.text.textContent;
  if (typed === row.line.text) return;
  const text = typed.replace(/\s+/g, " ").trim();
  if (text === row.line.text) {  // only spaces changed: the line as it was, words and all
    fill(row, row.line);
    return;
  }
  // the words were timed for the old text: the line is marked as a whole from now on (the page drops them too)
  fill(row, {...row.line, text, pieces: null});
  post("streamlit:setComponentValue", {value: rows.map((r) => r.line.text), dataType: "json"});
}

function row(line, index) {
  const element = document.createElement("li");
  const time = document.createElement("button");
  time.type = "button";
  time.className = "time";
  time.title = "play from here";
  const speaker = document.createElement("span");
  speaker.className = "speaker";
  const text = document.createElement("span");
  text.className = "text";
  text.setAttribute("role", "textbox");
  text.setAttribute("aria-label", `line ${index + 1}`);
  try {
    text.contentEditable = "plaintext-only";
  } catch {
    text.contentEditable = "true";  // a browser without plaintext-only; the text is read as plain text anyway
  }
  element.append(time, speaker, text);
  const made = {element, time, speaker, text};
  fill(made, line);
  time.addEventListener("click", () => play(made.line.start));
  text.addEventListener("click", (event) => {
    const word = event.target.closest(".word");
    if (word) seek(made.words[word.dataset.index].start);
  });
  text.addEventListener("keydown", (event) => {
    if (event.isComposing) return;  // Enter that ends an input method's composition (Chinese, Japanese) is its own
    if (event.key === "Enter") {
      event.preventDefault();  // one line per segment
      text.blur();
    } else if (event.key === "Escape") {
      fill(made, made.line);
      text.blur();
    }
  });
  text.addEventListener("blur", () => commit(made));
  return made;
}

function reveal(element) {
  if (document.activeElement?.isContentEditable) return;  // the user is editing: the list stays where it is
  const top = element.offsetTop, bottom = top + element.offsetHeight;
  if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 3;
}

function mark(seconds) {
  const last = rows.findLast((r) => r.line.start <= seconds);
  const current = last && seconds < last.line.end ? last : null;
  const word = current?.words.find((w) => w.start <= seconds && seconds < w.end) ?? null;
  if (current !== marked.row) {
    marked.row?.element.classList.remove("current");
    current?.element.classList.add("current");
    if (current && !player.paused) reveal(current.element);
  }
  if (word !== marked.word) {
    marked.word?.element.classList.remove("current");
    word?.element.classList.add("current");
  }
  marked = {row: current, word};
}

function follow() {
  mark(player.currentTime);
  following = !player.paused;
  if (following) requestAnimationFrame(follow);
}

function load(audio, type) {
  if (player.src) URL.revokeObjectURL(player.src);
  if (audio) player.src = URL.createObjectURL(new Blob([audio], {type}));
  else player.removeAttribute("src");
  player.hidden = !audio;
  document.body.classList.toggle("no-audio", !audio);
  hint.textContent = audio ? HINTS.audio : HINTS.none;
}

function render({key, lines, audio, audio_type: type}) {
  if (key !== shown) {
    shown = key;
    rows = lines.map(row);
    list.replaceChildren(...rows.map((r) => r.element));
    marked = {row: null, word: null};
    load(audio, type);
  } else {
    // the page's lines after a rerun (edits, speaker names): a line being edited is left alone
    lines.forEach((line, i) => {
      if (rows[i] && rows[i].text !== document.activeElement && JSON.stringify(line) !== JSON.stringify(rows[i].line)) {
        fill(rows[i], line);
      }
    });
    if (audio && !player.src) load(audio, type);  // uploaded again
  }
  mark(player.currentTime);
}

function theme(colours) {
  const style = document.documentElement.style;
  const names = {"--text": colours.textColor, "--background": colours.backgroundColor,
    "--panel": colours.secondaryBackgroundColor, "--accent": colours.primaryColor, "--font": colours.font};
  for (const [name, value] of Object.entries(names)) if (value) style.setProperty(name, value);
  style.colorScheme = colours.base === "dark" ? "dark" : "light";
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || event.data?.type !== "streamlit:render") return;
  if (event.data.theme) theme(event.data.theme);
  render(event.data.args);
});
player.addEventListener("play", () => following || follow());
player.addEventListener("seeked", () => mark(player.currentTime));
player.addEventListener("timeupdate", () => mark(player.currentTime));  // also where no frames are drawn
const height = () => Math.ceil(document.body.getBoundingClientRect().height);
new ResizeObserver(() => post("streamlit:setFrameHeight", {height: height()})).observe(document.body);
post("streamlit:componentReady", {apiVersion: 1});
