"""Cut energy: transforms judged by measured joules at a stated quality."""
