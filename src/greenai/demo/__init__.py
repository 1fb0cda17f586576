"""The main job: a real classifier trained under the tracker (see `greenai demo`)."""
