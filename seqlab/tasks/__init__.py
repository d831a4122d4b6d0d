"""Task glue between data, models and the generic Trainer: one module per sequence shape.

Each task module has a batch type (with ``.to(device)``), a builder of deterministic ``Batches``
(``epoch_batches(epoch)``, ``len``), and a task object with ``loss(model, batch) -> (loss_sum, count)`` (a sum,
normalised once per update by the Trainer) and ``evaluate(model, batches) -> {metric: value}``:

* ``classification``: many-to-one (MR, TREC), accuracy and macro F1;
* ``tagging``: synchronised many-to-many (CoNLL-2000 chunking), token accuracy and chunk F1;
* ``captioning``: one-to-many conditioned on an image (Flickr8k), token NLL and perplexity;
* ``forecasting``: numeric series, squared error and k-step-ahead errors.
"""
