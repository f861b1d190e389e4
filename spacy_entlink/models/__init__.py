"""Model code (thinc layers and Hugging Face helpers), separate from the pipeline glue."""
