"""neurosymbolic: a grid agent that plans with A* and perceives and acts with small tinygrad networks."""
