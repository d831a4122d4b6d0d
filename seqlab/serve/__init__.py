"""``seqlab serve``: trained model directories behind an HTTP API and a web page.

``app.py`` holds the endpoints, errors, limits, API key and metrics; ``batching.py`` the dynamic batching worker;
``models.py`` what each task's model answers, through the same library calls the CLI uses; ``static/`` the page.
"""
