"""Video data: decoding, dataset builders, input pipelines and split sets."""
