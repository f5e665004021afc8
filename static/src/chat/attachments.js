// Files for the next message: each one is uploaded over HTTP as soon as it is chosen
// (multipart POST with the CSRF header; never over the socket, whose frames are capped),
// its text extracted on the server, and shown as a chip with a remove button. Sending
// takes the uploaded ids (message.send `attachments`); a sent message shows its chips.

const KIND_LABELS = { text: "Text", markdown: "Markdown", code: "Code", csv: "CSV", pdf: "PDF" };

function sizeText(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** A chip for `file` ({name, kind, pages?}); `onRemove` adds its × button. */
export function chipEl(file, onRemove = null) {
  const li = document.createElement("li");
  li.className = "attachment-chip";
  if (file.kind) li.dataset.kind = file.kind;
  const name = document.createElement("span");
  name.className = "chip-name";
  name.textContent = file.name; // text, never HTML: a file name is the uploader's to choose
  const meta = document.createElement("span");
  meta.className = "chip-meta small muted";
  li.append(name, meta);
  if (onRemove) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "chip-remove";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.textContent = "×";
    remove.addEventListener("click", () => onRemove(li));
    li.append(remove);
  }
  return li;
}

/** The chips of a message just sent, under its text (as the server renders them). */
export function sentChips(files) {
  const list = document.createElement("ul");
  list.className = "attachment-chips";
  list.setAttribute("aria-label", "Attached files");
  for (const file of files) list.append(chipEl(file));
  return list;
}

export function createAttachments(page) {
  const { attachInput, attachButton, attachmentChips: list, root } = page.els;
  const { urls } = page;
  const maxBytes = parseInt(root.dataset.attachmentMaxBytes || "0", 10);
  const ready = new Map(); // chip element -> {id, name, kind, pages}
  let uploading = 0;

  const refresh = () => {
    if (list) list.hidden = list.children.length === 0;
  };

  async function upload(file) {
    if (maxBytes && file.size > maxBytes) {
      page.showToast(`${file.name} is ${sizeText(file.size)}; files may be at most ${sizeText(maxBytes)}.`);
      return;
    }
    const chip = chipEl({ name: file.name }, remove);
    chip.dataset.state = "uploading";
    chip.querySelector(".chip-meta").textContent = "Reading…";
    list.append(chip);
    refresh();
    uploading += 1;
    const body = new FormData();
    body.append("file", file);
    const resp = await page.postForm(urls.attachment, body).catch(() => null);
    const data = resp ? await resp.json().catch(() => null) : null;
    uploading -= 1;
    if (!resp || !resp.ok || !data || !data.id) {
      chip.remove();
      refresh();
      page.showToast(data?.error || `${file.name} could not be attached; try again.`);
      return;
    }
    chip.dataset.state = "ready";
    chip.dataset.attachmentId = data.id;
    chip.dataset.kind = data.kind;
    const pages = data.pages ? ` · ${data.pages} page${data.pages === 1 ? "" : "s"}` : "";
    chip.querySelector(".chip-meta").textContent = `${KIND_LABELS[data.kind] || data.kind}${pages}`;
    ready.set(chip, { id: data.id, name: data.name, kind: data.kind, pages: data.pages });
  }

  async function remove(chip) {
    const file = ready.get(chip);
    ready.delete(chip);
    chip.remove();
    refresh();
    if (file && urls.attachmentRemove) await page.post(page.urlFor(urls.attachmentRemove, file.id)).catch(() => null);
  }

  /** Whether a file is still uploading (the message waits for it). */
  const busy = () => uploading > 0;

  /** The uploaded files for the message being sent; the composer's chips are cleared. */
  function take() {
    const files = [...ready.values()];
    ready.clear();
    if (list) list.replaceChildren();
    refresh();
    return files;
  }

  if (attachButton && attachInput && list) {
    attachButton.addEventListener("click", () => attachInput.click());
    attachInput.addEventListener("change", async () => {
      const files = [...attachInput.files];
      attachInput.value = ""; // the same file may be chosen again
      await Promise.all(files.map(upload));
    });
    // Files dropped on the message box are attached too.
    const box = page.els.composer;
    box.addEventListener("dragover", (event) => {
      if (event.dataTransfer?.types?.includes("Files")) event.preventDefault();
    });
    box.addEventListener("drop", async (event) => {
      if (!event.dataTransfer?.files?.length) return;
      event.preventDefault();
      await Promise.all([...event.dataTransfer.files].map(upload));
    });
  }

  return { busy, take };
}
