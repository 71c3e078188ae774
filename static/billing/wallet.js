// Top-up form: typing a custom amount selects the "custom" preset (no inline scripts: CSP),
// and picking a preset again clears it: the server lets a typed amount win over any preset.
document.addEventListener("input", (event) => {
  if (event.target.name !== "custom_yuan") return;
  const custom = event.target.form.querySelector('input[name="preset"][value="custom"]');
  if (custom) custom.checked = true;
});
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.name !== "preset" || el.value === "custom" || !el.form) return;
  const typed = el.form.querySelector('input[name="custom_yuan"]');
  if (typed) typed.value = "";
});
