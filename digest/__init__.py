"""digest: a daily research-digest newsletter.

The job is a pipeline of small stages, each a module with a narrow API:
sources (retrieve and parse) -> store (seen-list, subscribers, editions,
deliveries) -> select (topic filters) -> render -> deliver.  The CLI, the
worker and the web app are thin shells on top of ``digest.app``, the one door.
"""

__version__ = "0.1.0"
