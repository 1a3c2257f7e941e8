"""Training: freezing rules, losses, the train step, the trainer loop and evaluation."""
