"""How wide the page's content column is in the visitor's browser (Streamlit has no such value).

A tiny Streamlit component (st.components.v2, inline JavaScript, no package) measures the width
of the container it is placed in and reports it back, once when it mounts and again only when
the width changes by 16 px or more (a phone turned sideways, a resized window). The page uses
it to size the canvas so that it fits (a 700 px Number canvas does not fit a 358 px phone
column) and to lay out a phone screen so the answer shows beside the canvas.
"""

import streamlit as st

_JS = """
export default function (component) {
  const { parentElement, setStateValue } = component;
  const probe = parentElement.querySelector('.digitrec-width');
  if (!probe) return;
  const report = () => {
    const width = Math.round(probe.getBoundingClientRect().width);
    if (width > 0 && (probe.lastReported === undefined || Math.abs(width - probe.lastReported) >= 16)) {
      probe.lastReported = width;
      setStateValue('width', width);
    }
  };
  const observer = new ResizeObserver(() => {
    clearTimeout(probe.pendingReport);
    probe.pendingReport = setTimeout(report, 150);
  });
  observer.observe(probe);
  report();
  return () => { observer.disconnect(); clearTimeout(probe.pendingReport); };
}
"""

# Registered once, when this module is first imported (a page script reruns; this module does not).
_measure = st.components.v2.component(
    "digitrec.content_width", html='<div class="digitrec-width"></div>', js=_JS,
    css=".digitrec-width { width: 100%; height: 0; }",
)


def content_width(key: str = "content-width") -> int | None:
    """The width in CSS pixels of the container this is called in; None until the browser says.

    Place it at the full width of the area to measure. It renders nothing visible (an empty
    element: one layout gap in a vertical container).
    """
    result = _measure(key=key, default={"width": None}, on_width_change=lambda: None,
                      width="stretch", height="content")
    width = result.get("width") if result is not None else None
    return int(width) if isinstance(width, (int, float)) and width > 0 else None
