// ARIA tabs (the WAI-ARIA Authoring Practices' "tabs with automatic activation"): one tab
// in the page's tab order, arrow keys move between tabs and show each, Home and End go to
// the first and last. The shown tab is written to the address (`#log`) so a link or a
// reload opens the same one; other hashes (such as `#run-4`) are left to the page.

/**
 * Make the `[role=tab]` buttons of `tablist` switch their `aria-controls` panels.
 * Returns `{ show(name, { focus }), current(), nameOf(element) }`; `onChange(name)` runs
 * after every switch.
 */
export function mountTabs(tablist, { onChange = () => {} } = {}) {
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];
  const names = tabs.map((t) => t.dataset.tab);
  const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));
  let shown = names[0];

  function show(name, { focus = false, remember = true } = {}) {
    const index = names.indexOf(name);
    if (index < 0) return;
    tabs.forEach((tab, i) => {
      const on = i === index;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      panelOf(tab).hidden = !on;
    });
    if (focus) tabs[index].focus();
    const changed = shown !== name;
    shown = name;
    // replaceState: a switch is not a page of its own for Back, and does not scroll.
    if (remember && location.hash.slice(1) !== name) {
      history.replaceState(history.state, "", name === names[0] ? location.pathname + location.search : `#${name}`);
    }
    if (changed) onChange(name);
  }

  tablist.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) show(tab.dataset.tab);
  });
  tablist.addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const to = {
      ArrowRight: (index + 1) % tabs.length,
      ArrowLeft: (index - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    show(names[to], { focus: true });
  });

  /** The tab whose panel holds `element`, or null. */
  function nameOf(element) {
    const tab = tabs.find((t) => panelOf(t).contains(element));
    return tab ? tab.dataset.tab : null;
  }

  const fromHash = () => {
    const name = location.hash.slice(1);
    return names.includes(name) ? name : null;
  };
  window.addEventListener("hashchange", () => {
    const name = fromHash();
    if (name) show(name, { remember: false });
  });
  // Another part of the page asks for an element to be shown (the `/` shortcut does).
  document.addEventListener("winslow:reveal", (event) => {
    const name = nameOf(event.detail.element);
    if (name) show(name);
  });
  const first = fromHash();
  if (first) show(first, { remember: false });
  return { show, current: () => shown, nameOf, names };
}
