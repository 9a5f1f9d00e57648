"""Selection: the topic query language (``topics``) and the edition's full-text index
(``index``) that picks each reader's papers."""
