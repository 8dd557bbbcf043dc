"""Pure, batched geometry: rotations, camera projection and distortion, triangulation.

Every public function accepts leading batch dimensions and checks the trailing shape, raising
``ValueError`` that states the expected and the actual shape.
"""
