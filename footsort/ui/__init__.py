"""The local review page (`footsort ui`): a Starlette server and plain HTML/CSS/JS, no build step, no CDN.

Import footsort.ui.server only where the page is served: it needs the `ui` extra (starlette, uvicorn).
"""
