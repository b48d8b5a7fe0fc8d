"""The pages in real headless Chromium (issue 15, "Done when"): the harness
(``chromium``), the checks every page passes (``checks``), the gateway the
pages are served from (``site``) and the tests, with screenshots."""
