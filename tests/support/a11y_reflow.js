// The reflow check of the browser tier (tests/support/a11y.py), run in a page laid out at
// 320 CSS pixels: the document's width, what sticks out of it, and every box that scrolls
// sideways without being a data table's named, focusable scrolling region (WCAG 1.4.10).
() => {
  const width = document.documentElement.clientWidth;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const inScroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX !== "visible" && s.overflowX !== "clip") return p !== document.body && p !== document.documentElement;
    }
    return false;
  };
  const sticking = [], scrollers = [];
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    if ((style.overflowX === "auto" || style.overflowX === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      const named = el.getAttribute("aria-labelledby") || el.getAttribute("aria-label");
      if (!(el.getAttribute("role") === "region" && el.tabIndex === 0 && named && el.querySelector("table")))
        scrollers.push(describe(el));
    }
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !inScroller(el)) sticking.push(describe(el) + " reaches " + Math.round(box.right) + " px");
  }
  return {width: width, scrollWidth: document.documentElement.scrollWidth,
          sticking: sticking.slice(0, 5), scrollers: scrollers};
}
