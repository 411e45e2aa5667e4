"""How wide the page's content column is in the visitor's browser (Streamlit has no such value).

A tiny Streamlit component (st.components.v2, inline JavaScript, no package) measures the width
of the container it is placed in and reports it back, once when it mounts and again only when
the width changes by 16 px or more (a phone turned sideways, a resized window). The page uses
it to size the canvas so that it fits (a 700 px Number canvas does not fit a 358 px phone
column) and to lay out a phone screen so the answer shows beside the canvas. Being the page's
one script in the browser, it also keeps the canvas's hidden toolbar off the canvas (below).
"""

import json

import streamlit as st

# streamlit-drawable-canvas 0.13 keeps its toolbar (update, undo, redo, edit, reset) invisible
# until the pointer is over the canvas, but it still takes clicks there: 1rem above the canvas,
# 46 px high, it lay over the canvas's top right 30 px. A finger has no hover, so a stroke begun
# there on a phone was swallowed, or pressed the unseen "Reset canvas". Its stylesheet is in the
# canvas's shadow root, out of the page's CSS reach: this puts a rule there keeping the toolbar
# wholly above the canvas (TOOLBAR_ROOM on the Draw page leaves it room), seen or not.
# Its first button sends the drawing to the app, which every stroke does already on this page
# (update_streamlit): a new user pressed it and saw nothing happen. The rule hides it there.
CANVAS_TOOLBAR_CSS = (".dc-toolbar { top: -2.9rem !important; } "
                      '.dc-icon-button[aria-label="Update the app with this drawing"] '
                      "{ display: none !important; }")

_JS = """
const TOOLBAR_CSS = "@TOOLBAR_CSS@";

function keepCanvasToolbarsAbove() {
  // Every component's shadow root gets the rule (it matches only the canvas's toolbar): the
  // canvas fills its root after the root appears, which a page-wide observer does not see.
  for (const box of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
    for (const host of [box, ...box.querySelectorAll('div')]) {
      const root = host.shadowRoot;
      if (root && !root.querySelector('style[data-digitrec]')) {
        const style = document.createElement('style');
        style.dataset.digitrec = 'toolbar';
        style.textContent = TOOLBAR_CSS;
        root.appendChild(style);
      }
    }
  }
}

if (!window.digitrecToolbars) {  // once per browser tab: every canvas mounted later gets it too
  window.digitrecToolbars = true;
  let queued = false;
  new MutationObserver(() => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(() => { queued = false; keepCanvasToolbarsAbove(); });
      setTimeout(keepCanvasToolbarsAbove, 300);  // a root attached a moment after its host
    }
  }).observe(document.body, { childList: true, subtree: true });
  keepCanvasToolbarsAbove();
}

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
""".replace('"@TOOLBAR_CSS@"', json.dumps(CANVAS_TOOLBAR_CSS))

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
