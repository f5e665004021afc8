// The model picker: which tier a new turn goes to, and which model answers on it.

export function createPicker({ tierSelect, servedBy }) {
  function updateServedBy() {
    const opt = tierSelect.selectedOptions[0];
    servedBy.textContent = opt?.dataset.servedBy ? `Answered by ${opt.dataset.servedBy}` : "";
  }
  tierSelect.addEventListener("change", updateServedBy);

  return { tier: () => tierSelect.value, updateServedBy };
}
