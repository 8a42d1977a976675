"""faceserve's networks, their weights formats and the pre-processing they were trained with."""
