"""The stage as one picture: a compositor, one encoder, and its outputs (composed recording,
live stream out over RTMP, HLS). docs/recording.md."""
