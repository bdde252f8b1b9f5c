"""Small reusable hardware-side helpers shared by the generators and their drivers."""
